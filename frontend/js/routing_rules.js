// Routing rules (GET/POST /api/routing-rules, PATCH/DELETE /api/routing-rules/{id}): keywords and loose
// phrases that send a new conversation to a department's view or suggest an expert, tried in `position`
// order. Coordinators keep them here: made, changed, moved up or down, turned off and deleted, with what the
// server refuses said beside the form, and a box to try a message against the active rules.
import "./messages_rules.js";
import { api, patch, post } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { t } from "./i18n.js";
import { pages } from "./pages.js";
import { accountTitle, createDetails, errorText, field, loadItems, options } from "./ui.js";

/** Lines (or commas) of a textarea as a list, blanks left out. */
export function lines(text) {
  return text.split(/\n|,/).map((s) => s.trim()).filter(Boolean);
}

let current = null;
const following = new WeakSet();

class RoutingPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.items = [];
    this.editing = null;
    this.confirming = null;
    this.heading = h("h1", { class: "page-title", id: "routing-title", tabindex: "-1" });
    this.intro = h("p", { class: "page-intro" });
    this.createBox = h("div", { class: "create" });
    this.tryBox = h("div", { class: "routing-try" });
    this.table = h("div", { class: "table-wrap" });
    this.el = h("section", { class: "admin routing-rules", "aria-labelledby": "routing-title" },
      this.heading, this.intro, this.createBox, this.table, this.tryBox);
  }

  async load() {
    const items = await loadItems("/api/routing-rules", this.table,
      this.ctx.departments.size && this.ctx.users.size ? null : () => this.ctx.refreshReference());
    if (!items) return;
    this.items = items;
    this.render();
  }

  render() {
    this.heading.textContent = t("routing.title");
    this.intro.textContent = t("routing.intro");
    if (!this.createBox.firstChild) {
      fill(this.createBox, createDetails(t("routing.new"), this.form(null)));
    }
    if (!this.tryBox.firstChild) fill(this.tryBox, this.tryForm());
    if (!this.items.length) {
      fill(this.table, h("p", { class: "hint" }, t("routing.empty")));
      return;
    }
    // A re-render (after a move, or a colleague's change) keeps the focus on the same control where it can.
    const focused = this.table.contains(document.activeElement) ? document.activeElement.getAttribute("aria-label")
      : null;
    fill(this.table, h("table", { class: "data" },
      h("caption", { class: "sr-only" }, t("routing.title")),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, t("routing.order")),
        h("th", { scope: "col" }, t("routing.name")), h("th", { scope: "col" }, t("routing.match")),
        h("th", { scope: "col" }, t("routing.sends_to")), h("th", { scope: "col" }, t("routing.status")),
        h("th", { scope: "col" }, t("admin.actions")))),
      h("tbody", null, this.items.map((rule, i) => this.row(rule, i)))));
    const labels = [this.focusNext, focused].filter(Boolean).flat();
    for (const label of labels) {
      const again = [...this.table.querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === label
        && !b.disabled);
      if (again) {
        again.focus();
        break;
      }
    }
  }

  target(rule) {
    const parts = [];
    if (rule.department_id) parts.push(this.ctx.departments.get(rule.department_id)?.name || `#${rule.department_id}`);
    if (rule.expert_user_id) parts.push(t("routing.expert_to", { name: this.ctx.userName(rule.expert_user_id) }));
    return parts.join(", ");
  }

  row(rule, i) {
    if (this.editing === rule.id) {
      return h("tr", { class: "editing" }, h("td", { colspan: "6" }, this.form(rule)));
    }
    const last = i === this.items.length - 1;
    const actions = this.confirming === rule.id
      ? [h("span", { class: "confirm-text" }, t("routing.confirm", { name: rule.name })), " ",
        h("button", { type: "button", class: "danger", onclick: () => this.remove(rule) }, t("routing.delete")), " ",
        h("button", { type: "button", onclick: () => { this.confirming = null; this.render(); } }, t("dialog.cancel"))]
      : [h("button", { type: "button", class: "link-button", "aria-label": t("admin.edit_named", { name: rule.name }),
        onclick: () => { this.editing = rule.id; this.confirming = null; this.render(); } }, t("admin.edit")), " ",
      h("button", { type: "button", class: "link-button",
        "aria-label": t(rule.active ? "routing.deactivate" : "routing.activate", { name: rule.name }),
        onclick: () => this.toggle(rule) }, t(rule.active ? "routing.turn_off" : "routing.turn_on")), " ",
      h("button", { type: "button", class: "link-button", "aria-label": t("routing.delete_named", { name: rule.name }),
        onclick: () => { this.confirming = rule.id; this.render(); } }, t("routing.delete"))];
    const words = [...rule.keywords, ...rule.phrases.map((p) => `“${p}” (${rule.threshold}%)`)];
    return h("tr", { class: rule.active ? null : "inactive", dataset: { id: String(rule.id) } },
      h("td", { class: "routing-order" },
        h("button", { type: "button", class: "icon-button move", disabled: i === 0,
          "aria-label": t("routing.up", { name: rule.name }), title: t("routing.up", { name: rule.name }),
          onclick: () => this.move(i, -1) }, "↑"),
        h("button", { type: "button", class: "icon-button move", disabled: last,
          "aria-label": t("routing.down", { name: rule.name }), title: t("routing.down", { name: rule.name }),
          onclick: () => this.move(i, 1) }, "↓")),
      h("th", { scope: "row", class: "routing-name" }, rule.name,
        rule.account_id ? h("span", { class: "hint routing-account" },
          accountTitle(this.ctx.accounts.get(rule.account_id)) || `#${rule.account_id}`) : null),
      h("td", { class: "routing-words" }, words.join(", ")),
      h("td", null, this.target(rule)),
      h("td", null, h("span", { class: `chip ${rule.active ? "chip-open" : "chip-closed"}` },
        t(rule.active ? "routing.on" : "routing.off"))),
      h("td", { class: "row-actions" }, actions));
  }

  form(rule) {
    const departments = [["", t("routing.none")],
      ...[...this.ctx.departments.values()].map((d) => [d.id, d.name])];
    const people = [...this.ctx.users.values()].filter((u) => u.active !== false)
      .sort((a, b) => (a.role === "expert" ? 0 : 1) - (b.role === "expert" ? 0 : 1) || a.name.localeCompare(b.name));
    const name = h("input", { type: "text", name: "name", required: true, maxlength: "200", value: rule ? rule.name : "" });
    const department = h("select", { name: "department_id" }, options(departments, rule ? rule.department_id ?? "" : ""));
    const expert = h("select", { name: "expert_user_id" }, options([["", t("routing.none")],
      ...people.map((u) => [u.id, `${u.name} (${t(`role.${u.role}`)})`])], rule ? rule.expert_user_id ?? "" : ""));
    const account = h("select", { name: "account_id" }, options([["", t("routing.any_account")],
      ...[...this.ctx.accounts.values()].map((a) => [a.id, accountTitle(a)])], rule ? rule.account_id ?? "" : ""));
    const keywords = h("textarea", { name: "keywords", rows: "3", value: rule ? rule.keywords.join("\n") : "" });
    const phrases = h("textarea", { name: "phrases", rows: "3", value: rule ? rule.phrases.join("\n") : "" });
    const threshold = h("input", { type: "number", name: "threshold", min: "50", max: "100", step: "1",
      value: String(rule ? rule.threshold : 85) });
    const active = h("input", { type: "checkbox", name: "active", checked: rule ? rule.active : true });
    const error = h("p", { class: "form-error", role: "alert" });
    const buttons = [h("button", { type: "submit", class: "primary" }, rule ? t("admin.save") : t("admin.create"))];
    if (rule) {
      buttons.unshift(h("button", { type: "button", onclick: () => { this.editing = null; this.render(); } },
        t("dialog.cancel")));
    }
    const id = (el) => (el.value === "" ? null : Number(el.value));
    return h("form", { class: "form-grid routing-form", onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const body = { name: name.value.trim(), department_id: id(department), expert_user_id: id(expert),
        account_id: id(account), keywords: lines(keywords.value), phrases: lines(phrases.value),
        threshold: Number(threshold.value), active: active.checked };
      // A new rule goes below the others; moving it is a click away.
      if (!rule) body.position = this.items.length ? Math.max(...this.items.map((r) => r.position)) + 10 : 0;
      try {
        if (rule) await patch(`/api/routing-rules/${rule.id}`, body);
        else await post("/api/routing-rules", body);
      } catch (err) {
        error.textContent = errorText(err);
        return;
      }
      announce(rule ? t("admin.saved") : t("admin.created"));
      this.editing = null;
      if (!rule) fill(this.createBox);
      await this.load();
    } }, field(t("routing.name"), name), field(t("routing.department"), department),
    field(t("routing.expert"), expert), field(t("routing.account"), account),
    field(t("routing.keywords"), keywords, t("routing.keywords_hint")),
    field(t("routing.phrases"), phrases, t("routing.phrases_hint")),
    field(t("routing.threshold"), threshold, t("routing.threshold_hint")),
    h("div", { class: "field choice" }, h("label", null, active, " ", t("routing.active"))), error,
    h("div", { class: "form-buttons" }, buttons));
  }

  tryForm() {
    const text = h("textarea", { name: "text", rows: "2", required: true });
    const answer = h("p", { class: "routing-try-answer", role: "status" });
    return createDetails(t("routing.try"),
      h("form", { class: "form-grid", onsubmit: async (e) => {
        e.preventDefault();
        try {
          const found = (await post("/api/routing-rules/test", { text: text.value })).match;
          answer.textContent = found ? t("routing.try_match", { rule: found.rule_name, reason: found.reason })
            : t("routing.try_none");
        } catch (err) {
          answer.textContent = errorText(err);
        }
      } }, h("div", { class: "wide" }, field(t("routing.try_text"), text)),
      h("div", { class: "form-buttons" }, h("button", { type: "submit" }, t("routing.try_button"))), answer));
  }

  /** Swap a rule with its neighbour; positions are renumbered 0, 10, 20... so equal ones get an order too. */
  async move(i, step) {
    const order = [...this.items];
    [order[i], order[i + step]] = [order[i + step], order[i]];
    const moved = order[i + step];
    try {
      for (const [n, rule] of order.entries()) {
        if (rule.position !== n * 10) await patch(`/api/routing-rules/${rule.id}`, { position: n * 10 });
      }
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      await this.load();
      return;
    }
    announce(t("routing.moved"));
    // The same arrow again, or the other one once the rule reached the top or the bottom.
    // Kept until this move's own reload is drawn: a colleague's change (our own patches among them) may
    // redraw the table meanwhile with an order before the move, where the other arrow had the focus.
    this.focusNext = [t(step < 0 ? "routing.up" : "routing.down", { name: moved.name }),
      t(step < 0 ? "routing.down" : "routing.up", { name: moved.name })];
    try {
      await this.load();
    } finally {
      this.focusNext = null;
    }
  }

  async toggle(rule) {
    try {
      await patch(`/api/routing-rules/${rule.id}`, { active: !rule.active });
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      return;
    }
    announce(t(rule.active ? "routing.turned_off" : "routing.turned_on", { name: rule.name }));
    this.focusNext = [t(rule.active ? "routing.activate" : "routing.deactivate", { name: rule.name })];
    try {
      await this.load();
    } finally {
      this.focusNext = null;
    }
  }

  async remove(rule) {
    try {
      await api("DELETE", `/api/routing-rules/${rule.id}`);
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      return;
    }
    this.confirming = null;
    announce(t("routing.deleted"));
    await this.load();
    this.heading.focus();
  }
}

pages.push({
  path: "routing",
  title: () => t("nav.routing"),
  roles: ["coordinator", "admin"],
  render: async (container, ctx) => {
    current = new RoutingPage(ctx);
    fill(container, current.el);
    if (!following.has(ctx)) {
      following.add(ctx);
      // A colleague's change shows here too; an open form is left alone.
      ctx.live.addEventListener("event", (e) => {
        const page = current;
        if (page && page.el.isConnected && page.ctx === ctx && e.detail.type.startsWith("routing_rule.")
            && page.editing === null && page.confirming === null) page.load();
      });
    }
    await current.load();
  },
});
