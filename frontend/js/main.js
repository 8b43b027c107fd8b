// The app: who is logged in, the shell (header, connection state, language), and the routes.
//   #/inbox/<view>[/<conversation id>]   the inbox
//   #/admin/users | departments | accounts
//   #/<page>                             a page another part of Webcare registered (see pages.js)
import "./extensions.js";
import { ApiError, api, get, onLoggedOut, setCsrf } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { LANGUAGES, language, onLanguage, setLanguage, t } from "./i18n.js";
import { Inbox } from "./inbox.js";
import { installKeys } from "./keys.js";
import { Live } from "./live.js";
import { pages } from "./pages.js";
import { tickTimes } from "./ui.js";

const app = {
  ctx: null,
  inbox: null,
  page: null,
  root: document.getElementById("app"),
};

async function boot() {
  document.documentElement.lang = language();
  onLoggedOut(() => {
    if (app.ctx) signedOut(t("login.expired"));
  });
  onLanguage(() => relabel());
  installKeys(app);
  window.addEventListener("hashchange", () => route());
  setInterval(() => tickTimes(), 30_000);
  // Everything the first screen needs is asked for at once; a 401 on /api/me means the login form.
  const early = prefetch();
  let me = null;
  try {
    me = await early.me;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) console.warn(e);
    me = null;
  }
  if (me) await start(me, early);
  else showLogin();
}

function prefetch() {
  // The views come with the first page of the one the address shows (index.html preloads "open").
  const view = (location.hash.match(/^#\/inbox\/([\w-]+)/) || [null, "open"])[1];
  const early = { me: get("/api/me"), views: get(`/api/views?first=${encodeURIComponent(view)}`),
    accounts: get("/api/accounts") };
  for (const promise of Object.values(early)) promise.catch(() => null);
  return early;
}

// Loaded when first needed: the first screen of someone logged in waits for neither.
const loginModule = () => import("./login.js");
const adminModule = () => import("./admin.js");

async function showLogin(message) {
  document.title = `${t("login.title")} · Webcare`;
  const { loginPage } = await loginModule();
  fill(app.root, loginPage(message, async (answer) => {
    setCsrf(answer.csrf_token);
    await start(answer.user, prefetch());
  }));
  app.root.querySelector("input")?.focus();
}

function signedOut(message) {
  app.ctx?.live.stop();
  app.ctx = null;
  app.inbox = null;
  app.page = null;
  setCsrf(null);
  showLogin(message);
}

async function start(me, early) {
  const live = new Live();
  const ctx = {
    me, live, users: new Map(), departments: new Map(), accounts: new Map(),
    navigate: (hash) => {
      if (location.hash === hash) route();
      else location.hash = hash;
    },
    userName: (id) => ctx.users.get(id)?.name || (id === me.id ? me.name : "…"),
    refreshReference: () => loadReference(ctx),
  };
  app.ctx = ctx;
  // Colleagues and departments are for names and escalation: they may come a moment later.
  loadReference(ctx, { accounts: false }).catch(() => null);
  let views;
  try {
    const [accounts, answer] = await Promise.all([early.accounts, early.views]);
    ctx.accounts = new Map(accounts.items.map((a) => [a.id, a]));
    views = answer;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) announce(t("error.unknown"), { tone: "error" });
    return;
  }
  buildShell(ctx);
  app.inbox = new Inbox(ctx, views);
  // Follow the stream from where the counts were taken: whatever changes after, it replays.
  live.lastSeq = views.last_seq;
  live.start();
  await route();
}

async function loadReference(ctx, { accounts = true } = {}) {
  const [users, departments, accountList] = await Promise.all([
    get("/api/users"), get("/api/departments"), accounts ? get("/api/accounts") : null]);
  ctx.users = new Map(users.items.map((u) => [u.id, u]));
  ctx.departments = new Map(departments.items.map((d) => [d.id, d]));
  if (accountList) ctx.accounts = new Map(accountList.items.map((a) => [a.id, a]));
}

// The shell

function buildShell(ctx) {
  const connection = h("span", { class: "connection", role: "status", "aria-live": "polite" });
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const nav = h("nav", { class: "mainnav", "aria-label": t("nav.main") });
  const langSelect = h("select", { class: "lang", "aria-label": t("nav.language"),
    onchange: () => setLanguage(langSelect.value) },
  Object.entries(LANGUAGES).map(([code, name]) => h("option", { value: code, selected: code === language(), lang: code },
    name)));
  const help = h("button", { type: "button", class: "icon-button help-button", "aria-keyshortcuts": "?",
    onclick: () => app.showHelp() }, "?");
  const logout = h("button", { type: "button", class: "link-button", onclick: async () => {
    try {
      await api("DELETE", "/api/session");
    } catch { /* logged out either way */ }
    signedOut(t("login.logged_out"));
  } });
  const who = h("span", { class: "who" });
  const header = h("header", { class: "topbar" },
    h("a", { href: "#/inbox/open", class: "brand" }, "Webcare"), nav,
    h("div", { class: "topbar-right" }, connection, langSelect, who, help, logout));
  const main = h("main", { id: "main", tabindex: "-1" });
  fill(app.root, h("a", { href: "#main", class: "skip" }, t("nav.skip")), header, banner, main);
  app.shell = { connection, banner, nav, langSelect, help, logout, who, main };
  renderShell();

  let quietTimer = null;
  const showState = (state, note) => {
    connection.dataset.state = state;
    connection.textContent = note || t(`live.${state}`);
    const lost = state === "lost";
    banner.hidden = !lost;
    if (lost) {
      fill(banner, t("live.banner"), " ", h("button", { type: "button", class: "link-button",
        onclick: () => ctx.live.reconnectNow() }, t("live.retry")));
    }
  };
  showState("connecting");
  ctx.live.addEventListener("state", (e) => {
    if (e.detail.state !== "live") showState(e.detail.state);
  });
  ctx.live.addEventListener("open", (e) => {
    clearTimeout(quietTimer);
    if (e.detail.resumed) {
      // Quietly: the status line says it, nothing pops up.
      showState("live", e.detail.after !== null ? t("live.resumed", { seq: e.detail.after }) : t("live.reloaded"));
      quietTimer = setTimeout(() => showState("live"), 6000);
    } else {
      showState("live");
    }
  });
  ctx.live.addEventListener("revoked", async () => {
    // Logged out or deactivated: /api/me answers 401 and onLoggedOut shows the login. A new role or
    // department: what the menus and pages offer changed, so start again as who one is now.
    try {
      const me = await get("/api/me");
      if (me.role !== ctx.me.role || me.department_id !== ctx.me.department_id) location.reload();
    } catch { /* onLoggedOut handles a 401 */ }
  });
  ctx.live.addEventListener("retrying", async (e) => {
    // A refused upgrade looks like any drop; the API says whether the session is still there.
    if (e.detail.attempt === 3) {
      try {
        await get("/api/me");
      } catch { /* onLoggedOut handles a 401 */ }
    }
  });
}

function renderShell() {
  const { ctx, shell } = app;
  if (!shell) return;
  const role = ctx.me.role;
  const links = [["#/inbox/open", t("nav.inbox"), "inbox"]];
  for (const page of pages) {
    if (!page.roles || page.roles.includes(role)) links.push([`#/${page.path}`, page.title(), page.path]);
  }
  if (role === "admin") {
    links.push(["#/admin/users", t("nav.users"), "admin/users"], ["#/admin/departments", t("nav.departments"),
      "admin/departments"]);
  }
  if (role === "admin" || role === "coordinator") links.push(["#/admin/accounts", t("nav.accounts"), "admin/accounts"]);
  const current = location.hash.slice(2) || "inbox/open";
  fill(shell.nav, h("ul", null, links.map(([href, label, key]) => h("li", null, h("a", {
    href, "aria-current": current === key || current.startsWith(`${key}/`) ? "page" : null }, label)))));
  shell.nav.setAttribute("aria-label", t("nav.main"));
  shell.langSelect.setAttribute("aria-label", t("nav.language"));
  shell.help.setAttribute("aria-label", t("help.title"));
  shell.help.title = t("help.title");
  shell.logout.textContent = t("nav.logout");
  fill(shell.who, ctx.me.name, " ", h("span", { class: "role" }, t(`role.${ctx.me.role}`)));
  shell.who.title = ctx.me.email;
  shell.main.setAttribute("aria-label", t("nav.content"));
}

function relabel() {
  if (!app.ctx) {
    showLogin();
    return;
  }
  renderShell();
  app.shell.connection.textContent = t(`live.${app.ctx.live.state}`);
  app.inbox?.relabel();
  app.page?.relabel?.();
  tickTimes();
}

// Routes

async function route() {
  if (!app.ctx) return;
  const parts = (location.hash || "#/inbox/open").replace(/^#\/?/, "").split("/");
  renderShell();
  const main = app.shell.main;
  if (parts[0] === "admin" && ["users", "departments", "accounts"].includes(parts[1])) {
    const { AdminPage } = await adminModule();
    if (!(app.page instanceof AdminPage) || app.page.kind !== parts[1]) {
      app.page = new AdminPage(app.ctx, parts[1]);
      fill(main, app.page.el);
      document.title = `${t(`nav.${parts[1]}`)} · Webcare`;
      await app.page.load();
    }
    return;
  }
  // A page for other roles is not there for this person: the address falls through to the inbox.
  const extra = pages.find((p) => p.path === parts[0] && (!p.roles || p.roles.includes(app.ctx.me.role)));
  if (extra) {
    app.page = { relabel: () => extra.render(main, app.ctx) };
    document.title = `${extra.title()} · Webcare`;
    fill(main);
    await extra.render(main, app.ctx);
    return;
  }
  app.page = null;
  if (main.firstChild !== app.inbox.el) fill(main, app.inbox.el);
  document.title = `${t("nav.inbox")} · Webcare`;
  const id = parts[0] === "inbox" && /^\d+$/.test(parts[2] || "") ? Number(parts[2]) : null;
  await app.inbox.show(parts[0] === "inbox" && parts[1] ? parts[1] : "open", id);
}

app.showHelp = () => import("./keys.js").then((keys) => keys.showHelp());
app.announce = announce;

boot();
