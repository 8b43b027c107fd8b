// The dashboard for coordinators and admins: response times per day (per account or department), the
// backlog now, and the conversations about to breach their SLA or past it, kept live from the stream.
// The figures come from /api/metrics/* (webcare/api/metrics.py); the charts from charts.js.
import { get, query } from "./api.js";
import { ChartFigure, PALETTE, formatCount, formatDuration, loadChartLibrary } from "./charts.js";
import { announce, fill, h } from "./dom.js";
import { absolute, language, t } from "./i18n.js";
import { pages } from "./pages.js";
import { accountTitle, errorText, field, options, statusChip } from "./ui.js";

const ROLES = ["coordinator", "admin"];
/** Events after which the backlog may read differently. */
const BACKLOG_EVENTS = new Set(["conversation.created", "message.received", "conversation.claimed",
  "conversation.released", "conversation.escalated", "reply.sent", "conversation.closed", "conversation.reopened",
  "conversation.sla_breached"]);
/** Events after which today's response times may read differently. */
const FIGURE_EVENTS = new Set(["reply.sent", "conversation.closed", "conversation.sla_breached"]);
const BACKLOG_EVERY_MS = 1000;
const FIGURES_EVERY_MS = 15_000;
/** Targets come into the "within" window as time passes, without any event: look again this often. */
const POLL_MS = 30_000;
const MAX_DAYS = 400;
const STATUSES = [["open", "#0b5cad"], ["claimed", "#5b3d99"], ["escalated", "#8a5300"]];

// What the person chose stays while the app is open (the page is built again on every visit).
const choice = { from: null, to: null, group: "account" };
let zone = null;
let current = null;

pages.push({ path: "dashboard", title: () => t("nav.dashboard"), roles: ROLES,
  render: async (container, ctx) => {
    current?.close();
    current = new Dashboard(ctx);
    fill(container, current.el);
    await current.load();
  } });

// Days of the organisation's calendar (the metrics' days), and the instants they start at.

function dayParts(date, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(date);
  return Object.fromEntries(parts.map((p) => [p.type, Number(p.value)]));
}

function today(timeZone) {
  const p = dayParts(new Date(), timeZone);
  return isoDay(Date.UTC(p.year, p.month - 1, p.day));
}

function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function addDays(day, n) {
  return isoDay(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000);
}

/** The instant (ISO, UTC) at which `day` begins in `timeZone`. */
function dayStart(day, timeZone) {
  const wall = Date.parse(`${day}T00:00:00Z`);
  const offset = (ms) => {
    const p = dayParts(new Date(ms), timeZone);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
  };
  const guess = wall - offset(wall);
  return new Date(wall - offset(guess)).toISOString().replace(".000Z", "Z");
}

function dayLabel(day) {
  return new Intl.DateTimeFormat(language(), { day: "numeric", month: "short", timeZone: "UTC" })
    .format(new Date(`${day}T00:00:00Z`));
}

async function organisationZone() {
  if (zone) return zone;
  try {
    const hours = await get("/api/business-hours");
    zone = hours.items.find((item) => item.scope === "organisation")?.timezone;
  } catch { /* the browser's own zone is the best guess left */ }
  zone ||= Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  return zone;
}

/** Call `fn` at most once per `ms`: the first call at once, the ones within the pause once after it. */
function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}

class Dashboard {
  constructor(ctx) {
    this.ctx = ctx;
    this.backlogData = null;
    this.closed = false;
    this.status = h("p", { class: "dash-status", role: "status" });
    this.heading = h("h1", { class: "page-title", id: "dash-title", tabindex: "-1" }, t("nav.dashboard"));
    this.controls = this.controlsEl();
    this.exports = h("p", { class: "dash-exports" });
    this.tiles = h("dl", { class: "tiles" });
    this.lists = h("div", { class: "risk-lists" });
    this.summary = h("div", { class: "table-wrap" });
    this.charts = {
      backlog: new ChartFigure({ name: "backlog", title: () => t("dash.chart.backlog"), type: "bar", values: "count",
        stacked: true, horizontal: true, rowHeader: () => t(`dash.group.${this.backlogGroup()}`) }),
      firstResponse: new ChartFigure({ name: "first-response", title: () => t("dash.chart.first_response"),
        type: "line", values: "duration", rowHeader: () => t("dash.day") }),
      resolution: new ChartFigure({ name: "resolution", title: () => t("dash.chart.resolution"), type: "line",
        values: "duration", rowHeader: () => t("dash.day") }),
      sla: new ChartFigure({ name: "sla", title: () => t("dash.chart.sla"), type: "bar", values: "count",
        stacked: true, rowHeader: () => t("dash.day") }),
    };
    this.el = h("section", { class: "dashboard", "aria-labelledby": "dash-title" },
      h("div", { class: "dash-head" }, this.heading, this.controls, this.exports),
      this.status,
      h("section", { class: "card backlog-card", "aria-labelledby": "backlog-title" },
        h("h2", { class: "card-title", id: "backlog-title" }, t("dash.backlog")), this.tiles),
      h("div", { class: "dash-grid" },
        h("section", { class: "card risk-card", "aria-labelledby": "risk-title" },
          h("h2", { class: "card-title", id: "risk-title" }, t("dash.risk")), this.lists),
        this.charts.backlog.el, this.charts.firstResponse.el, this.charts.resolution.el, this.charts.sla.el,
        h("section", { class: "card summary-card", "aria-labelledby": "summary-title" },
          h("h2", { class: "card-title", id: "summary-title" }, t("dash.summary")), this.summary)));
    this.refreshBacklog = throttle(() => this.loadBacklog(), BACKLOG_EVERY_MS);
    this.refreshFigures = throttle(() => this.loadFigures(), FIGURES_EVERY_MS);
    this.breaches = [];
    this.announceBreaches = throttle(() => this.sayBreaches(), BACKLOG_EVERY_MS);
    this.onEvent = (e) => this.event(e.detail);
    this.onOpen = () => { this.refreshBacklog(); this.refreshFigures(); };
    ctx.live.addEventListener("event", this.onEvent);
    ctx.live.addEventListener("open", this.onOpen);
    this.timer = setInterval(() => (this.el.isConnected ? this.loadBacklog() : this.close()), POLL_MS);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.ctx.live.removeEventListener("event", this.onEvent);
    this.ctx.live.removeEventListener("open", this.onOpen);
    for (const chart of Object.values(this.charts)) chart.destroy();
    if (current === this) current = null;
  }

  async load() {
    if (!ROLES.includes(this.ctx.me.role)) {
      fill(this.el, h("p", { role: "alert" }, t("dash.not_allowed")));
      return;
    }
    const library = loadChartLibrary();
    const timeZone = await organisationZone();
    choice.to ||= today(timeZone);
    choice.from ||= addDays(choice.to, -29);
    this.fromInput.value = choice.from;
    this.toInput.value = choice.to;
    this.groupSelect.value = choice.group;
    await Promise.all([this.loadBacklog(), this.loadFigures(),
      library.then((Chart) => {
        if (this.closed) return;
        for (const chart of Object.values(this.charts)) chart.attach(Chart);
        if (!Chart) this.status.textContent = t("dash.no_charts");
      })]);
  }

  event(frame) {
    if (!this.el.isConnected) {
      this.close();
      return;
    }
    if (frame.type === "conversation.sla_breached") {
      this.breaches.push(frame);
      this.announceBreaches();
    }
    if (BACKLOG_EVENTS.has(frame.type)) this.refreshBacklog();
    if (FIGURE_EVENTS.has(frame.type) && zone && choice.to >= today(zone)) this.refreshFigures();
  }

  /** Say what breached since the last time: by name when it is one, as a number when a sweep found many. */
  sayBreaches() {
    const breaches = this.breaches.splice(0);
    if (this.closed || !breaches.length) return;
    if (breaches.length > 1) {
      announce(t("dash.breached_many", { n: breaches.length }), { tone: "error" });
      return;
    }
    const [frame] = breaches;
    const known = this.backlogData?.at_risk.find((item) => item.conversation_id === frame.conversation_id);
    announce(t("dash.breached_now", { subject: known?.subject_preview || `#${frame.conversation_id}`,
      target: t(`dash.target.${frame.data.target}`) }), { tone: "error" });
  }

  // Controls

  controlsEl() {
    this.fromInput = h("input", { type: "date", name: "from", required: true });
    this.toInput = h("input", { type: "date", name: "to", required: true });
    this.groupSelect = h("select", { name: "group" }, options([["account", t("dash.group.account")],
      ["department", t("dash.group.department")], ["", t("dash.group.none")]], choice.group));
    const apply = () => {
      if (!this.fromInput.value || !this.toInput.value) return;
      choice.from = this.fromInput.value;
      choice.to = this.toInput.value;
      choice.group = this.groupSelect.value;
      this.loadFigures();
      if (this.backlogData) this.showBacklog();
    };
    for (const control of [this.fromInput, this.toInput, this.groupSelect]) control.addEventListener("change", apply);
    return h("form", { class: "dash-controls", "aria-label": t("dash.controls"), onsubmit: (e) => e.preventDefault() },
      field(t("dash.from"), this.fromInput), field(t("dash.to"), this.toInput), field(t("dash.group"), this.groupSelect));
  }

  range() {
    return { from: dayStart(choice.from, zone), to: dayStart(addDays(choice.to, 1), zone) };
  }

  backlogGroup() {
    return choice.group === "department" ? "department" : "account";
  }

  // Response times

  async loadFigures() {
    if (this.closed) return;
    const days = (Date.parse(choice.to) - Date.parse(choice.from)) / 86_400_000 + 1;
    this.showExports();
    if (!(days >= 1 && days <= MAX_DAYS)) {
      this.status.textContent = t("dash.bad_range", { max: MAX_DAYS });
      return;
    }
    const params = { ...this.range(), group_by: choice.group || null };
    let series;
    let report;
    try {
      [series, report] = await Promise.all([get(`/api/metrics/series${query(params)}`),
        get(`/api/metrics/response-times${query(params)}`)]);
    } catch (e) {
      this.status.textContent = errorText(e);
      return;
    }
    if (this.closed) return;
    this.status.textContent = "";
    const labels = series.days.map(dayLabel);
    const lines = (metric) => (series.groups.length
      ? series.groups.map((g, i) => ({ label: this.groupName(g), color: PALETTE[i % PALETTE.length],
        data: g.days.map((d) => d[metric].median) }))
      : [{ label: t("dash.median"), color: PALETTE[0], data: series.overall.map((d) => d[metric].median) },
        { label: t("dash.p90"), color: PALETTE[1], data: series.overall.map((d) => d[metric].p90) }]);
    this.charts.firstResponse.set({ labels, datasets: lines("first_response") });
    this.charts.resolution.set({ labels, datasets: lines("resolution") });
    this.charts.sla.set({ labels, datasets: [
      { label: t("dash.sla.hits"), color: "#1a6b36", data: series.overall.map((d) => d.sla.hits) },
      { label: t("dash.sla.breaches"), color: "#b42318", data: series.overall.map((d) => d.sla.breaches) }] });
    fill(this.summary, this.summaryTable(report));
  }

  groupName(group) {
    if (group.name) return group.name;
    return group.key === null ? t("dash.nobody") : `#${group.key}`;
  }

  summaryTable(report) {
    const row = (name, g) => h("tr", null, h("th", { scope: "row" }, name),
      h("td", null, formatCount(g.first_response.count)), h("td", null, formatDuration(g.first_response.median)),
      h("td", null, formatDuration(g.first_response.p90)), h("td", null, formatCount(g.resolution.count)),
      h("td", null, formatDuration(g.resolution.median)), h("td", null, formatDuration(g.resolution.p90)),
      h("td", null, formatCount(g.sla.hits)), h("td", null, formatCount(g.sla.breaches)));
    const overall = row(t("dash.overall"), report.overall);
    overall.classList.add("overall");
    const heads = ["dash.col.replies", "dash.col.fr_median", "dash.col.fr_p90", "dash.col.resolved",
      "dash.col.res_median", "dash.col.res_p90", "dash.sla.hits", "dash.sla.breaches"];
    return h("table", { class: "figures summary" },
      h("caption", { class: "sr-only" }, t("dash.summary")),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, t(`dash.group.${choice.group || "none"}`)),
        heads.map((key) => h("th", { scope: "col" }, t(key))))),
      h("tbody", null, report.groups.map((g) => row(this.groupName(g), g)), overall));
  }

  showExports() {
    const range = this.range();
    const link = (path, params, label) => h("a", { href: `${path}${query(params)}`, download: "" }, label);
    fill(this.exports, t("dash.export"), " ",
      link("/api/metrics/response-times.csv", { ...range, group_by: choice.group || null }, t("dash.export.times")),
      " · ", link("/api/metrics/conversations.csv", range, t("dash.export.conversations")),
      " · ", link("/api/metrics/backlog.csv", {}, t("dash.export.backlog")));
  }

  // The backlog and what is about to breach

  async loadBacklog() {
    if (this.closed) return;
    try {
      this.backlogData = await get("/api/metrics/backlog");
    } catch (e) {
      this.status.textContent = errorText(e);
      return;
    }
    if (!this.closed) this.showBacklog();
  }

  showBacklog() {
    const data = this.backlogData;
    const o = data.overall;
    const tile = (key, value, extra) => h("div", { class: `tile tile-${key}`, dataset: { tile: key } },
      h("dt", null, t(`dash.tile.${key}`)), h("dd", null, value, extra));
    const oldest = data.oldest_waiting[0];
    fill(this.tiles, tile("waiting", formatCount(o.waiting)), tile("open", formatCount(o.open)),
      tile("claimed", formatCount(o.claimed)), tile("escalated", formatCount(o.escalated)),
      tile("answered", formatCount(o.answered)),
      tile("oldest", oldest ? formatDuration(o.oldest_waiting_seconds) : "–",
        oldest ? h("a", { class: "tile-link", href: `#/inbox/open/${oldest.conversation_id}` },
          oldest.subject_preview || `#${oldest.conversation_id}`) : null),
      tile("breached", formatCount(data.breached.length)), tile("at_risk", formatCount(data.at_risk.length)));
    const groups = this.backlogGroup() === "department" ? data.departments : data.accounts;
    this.charts.backlog.relabel();
    this.charts.backlog.set({ labels: groups.map((g) => g.name),
      datasets: STATUSES.map(([status, color]) => ({ label: t(`status.${status}`), color,
        data: groups.map((g) => g[status]) })) });
    fill(this.lists,
      this.riskList("breached", data.breached, data.now),
      this.riskList("at_risk", data.at_risk, data.now, { minutes: Math.round(data.within_seconds / 60) }));
  }

  riskList(kind, items, now, params) {
    const heading = h("h3", { class: "risk-title", id: `risk-${kind}` }, t(`dash.${kind}`, params), " ",
      h("span", { class: "count" }, formatCount(items.length)));
    const list = items.length
      ? h("ul", { class: `risk-list risk-${kind}`, "aria-labelledby": heading.id }, items.map((item) => this.riskItem(
        kind, item, now)))
      : h("p", { class: "risk-none" }, t(`dash.${kind}.none`));
    return h("div", { class: "risk-group", dataset: { risk: kind } }, heading, list);
  }

  riskItem(kind, item, now) {
    const account = this.ctx.accounts.get(item.account_id);
    const late = Date.parse(now) - Date.parse(item.due_at);
    const when = kind === "breached" ? t("dash.overdue", { time: formatDuration(late / 1000) })
      : t("dash.due_in", { time: formatDuration(Math.max(0, -late) / 1000) });
    return h("li", { class: "risk-item", dataset: { conversation: item.conversation_id, target: item.target } },
      h("a", { class: "risk-subject", href: `#/inbox/open/${item.conversation_id}` },
        item.subject_preview || `#${item.conversation_id}`),
      h("div", { class: "risk-meta" },
        h("span", { class: `risk-when risk-when-${kind}` }, h("time", { datetime: item.due_at,
          title: absolute(item.due_at) }, when)),
        h("span", { class: "risk-target" }, t(`dash.target.${item.target}`)),
        statusChip(item.status),
        h("span", { class: "risk-account" }, account ? accountTitle(account) : `#${item.account_id}`)));
  }
}
