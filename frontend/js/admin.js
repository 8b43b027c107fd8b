// Admin pages: users, departments, and accounts with their health.
import { get, patch, post } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { t } from "./i18n.js";
import { createDetails, errorText, field, options, PLATFORMS, platformBadge, timeEl } from "./ui.js";

const ROLES = ["agent", "expert", "coordinator", "admin"];

/** What each platform's account takes (the API's "Accounts per platform"). */
const PLATFORM_FIELDS = {
  x: { settings: ["base_url", "poll_interval"],
    credentials: ["consumer_key", "consumer_secret", "access_token", "access_token_secret"] },
  mastodon: { settings: ["base_url", "poll_interval"], credentials: ["access_token"] },
  facebook: { settings: ["page_id", "verify_token", "poll_interval"], credentials: ["page_access_token", "app_secret"] },
  instagram: { settings: ["ig_user_id", "page_id", "verify_token", "poll_interval"],
    credentials: ["access_token", "app_secret"] },
  email: { settings: ["address", "imap_host", "imap_port", "smtp_host", "smtp_port", "tls", "poll_interval"],
    credentials: ["username", "password"] },
  api: { settings: ["callback_url"], credentials: ["secret"] },
};
const NUMBERS = new Set(["poll_interval", "imap_port", "smtp_port"]);
/** Health is not pushed over the live stream: the accounts page looks again this often. */
const HEALTH_REFRESH_MS = 5000;

export class AdminPage {
  constructor(ctx, kind) {
    this.ctx = ctx;
    this.kind = kind;
    this.items = [];
    this.editing = null;
    this.heading = h("h1", { class: "page-title", tabindex: "-1" });
    this.createBox = h("div", { class: "create" });
    this.table = h("div", { class: "table-wrap" });
    this.el = h("section", { class: `admin admin-${kind}`, "aria-labelledby": "admin-title" },
      this.heading, this.createBox, this.table);
    this.heading.id = "admin-title";
  }

  relabel() {
    this.render();
  }

  async load() {
    try {
      const [items] = await Promise.all([get(`/api/${this.kind}`), this.ctx.refreshReference()]);
      this.items = items.items;
    } catch (e) {
      fill(this.table, h("p", { role: "alert" }, errorText(e)));
      return;
    }
    this.render();
    if (this.kind === "accounts" && !this.timer) {
      this.timer = setInterval(() => this.refreshHealth(), HEALTH_REFRESH_MS);
    }
  }

  async refreshHealth() {
    if (!this.el.isConnected) {
      clearInterval(this.timer);
      return;
    }
    if (this.editing !== null || document.hidden) return;
    try {
      this.items = (await get("/api/accounts")).items;
    } catch {
      return;
    }
    if (this.editing === null && this.el.isConnected) fill(this.table, this.accounts());
  }

  isAdmin() {
    return this.ctx.me.role === "admin";
  }

  render() {
    this.heading.textContent = t(`nav.${this.kind}`);
    fill(this.createBox, this.isAdmin() ? this.createForm() : null);
    fill(this.table, this[this.kind]());
  }

  async save(promise, message) {
    try {
      await promise;
      announce(message);
      this.editing = null;
      await this.load();
      return true;
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      return false;
    }
  }

  departmentOptions(selected, { none = true } = {}) {
    const list = [...this.ctx.departments.values()].map((d) => [d.id, d.name]);
    return options(none ? [["", t("admin.no_department")], ...list] : list, selected ?? "");
  }

  createForm() {
    const form = this.kind === "users" ? this.userForm(null) : this.kind === "departments" ? this.departmentForm()
      : this.accountForm(null);
    return createDetails(t(`admin.new_${this.kind}`), form);
  }

  // Users

  users() {
    const rows = this.items.map((u) => this.editing === u.id ? h("tr", { class: "editing" },
      h("td", { colspan: "6" }, this.userForm(u))) : h("tr", { class: u.active ? null : "inactive" },
      h("th", { scope: "row" }, u.name),
      h("td", null, u.email),
      h("td", null, t(`role.${u.role}`)),
      h("td", null, this.ctx.departments.get(u.department_id)?.name || "—"),
      h("td", null, u.active ? t("admin.active") : t("admin.inactive")),
      h("td", null, this.isAdmin() ? h("button", { type: "button", class: "link-button",
        "aria-label": t("admin.edit_named", { name: u.name }),
        onclick: () => { this.editing = u.id; this.render(); } }, t("admin.edit")) : null)));
    return h("table", { class: "data" },
      h("caption", { class: "sr-only" }, t("nav.users")),
      h("thead", null, h("tr", null, [t("admin.name"), t("admin.email"), t("admin.role"), t("admin.department"),
        t("admin.status"), h("span", { class: "sr-only" }, t("admin.actions"))].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, rows));
  }

  userForm(user) {
    const name = h("input", { name: "name", required: true, value: user ? user.name : "" });
    const email = user ? null : h("input", { name: "email", type: "email", required: true });
    const role = h("select", { name: "role" }, options(ROLES.map((r) => [r, t(`role.${r}`)]), user ? user.role : "agent"));
    const department = h("select", { name: "department" }, this.departmentOptions(user ? user.department_id : ""));
    const password = h("input", { name: "password", type: "password", autocomplete: "new-password", minlength: "8",
      required: !user });
    const active = user ? h("input", { type: "checkbox", name: "active", checked: user.active }) : null;
    return h("form", { class: "form-grid", onsubmit: async (e) => {
      e.preventDefault();
      const body = { name: name.value, role: role.value,
        department_id: department.value ? Number(department.value) : null };
      if (password.value) body.password = password.value;
      if (user) {
        body.active = active.checked;
        await this.save(patch(`/api/users/${user.id}`, body), t("admin.saved"));
      } else {
        body.email = email.value;
        await this.save(post("/api/users", body), t("admin.created"));
      }
    } },
    field(t("admin.name"), name), email ? field(t("admin.email"), email) : null, field(t("admin.role"), role),
    field(t("admin.department"), department),
    field(user ? t("admin.new_password") : t("admin.password"), password, user ? t("admin.password_keep") : null),
    active ? h("label", { class: "choice" }, active, ` ${t("admin.active")}`) : null,
    this.formButtons(Boolean(user)));
  }

  formButtons(editing) {
    return h("div", { class: "form-buttons" },
      editing ? h("button", { type: "button", onclick: () => { this.editing = null; this.render(); } },
        t("dialog.cancel")) : null,
      h("button", { type: "submit", class: "primary" }, editing ? t("admin.save") : t("admin.create")));
  }

  // Departments

  departments() {
    return h("table", { class: "data" },
      h("caption", { class: "sr-only" }, t("nav.departments")),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, t("admin.name")),
        h("th", { scope: "col" }, t("admin.members")), h("th", { scope: "col" }, t("nav.accounts")))),
      h("tbody", null, this.items.map((d) => h("tr", null,
        h("th", { scope: "row" }, d.name),
        h("td", null, [...this.ctx.users.values()].filter((u) => u.department_id === d.id).length),
        h("td", null, [...this.ctx.accounts.values()].filter((a) => a.department_id === d.id).length)))));
  }

  departmentForm() {
    const name = h("input", { name: "name", required: true });
    return h("form", { class: "form-grid", onsubmit: async (e) => {
      e.preventDefault();
      await this.save(post("/api/departments", { name: name.value }), t("admin.created"));
    } }, field(t("admin.name"), name), this.formButtons(false));
  }

  // Accounts

  accounts() {
    const rows = this.items.map((a) => this.editing === a.id ? h("tr", { class: "editing" },
      h("td", { colspan: "5" }, this.accountForm(a))) : h("tr", { class: a.active ? null : "inactive" },
      h("th", { scope: "row" }, platformBadge(a.platform), " ", h("span", { class: "account-name" }, a.name),
        h("span", { class: "handle" }, ` @${a.handle}`)),
      h("td", null, this.ctx.departments.get(a.department_id)?.name || "—"),
      h("td", null, [a.active ? t("admin.active") : t("admin.inactive"),
        a.restricted ? h("span", { class: "tag" }, t("admin.restricted")) : null]),
      h("td", null, health(a)),
      h("td", null, this.isAdmin() ? h("button", { type: "button", class: "link-button",
        "aria-label": t("admin.edit_named", { name: a.name }),
        onclick: () => { this.editing = a.id; this.render(); } }, t("admin.edit")) : null)));
    return h("table", { class: "data" },
      h("caption", { class: "sr-only" }, t("nav.accounts")),
      h("thead", null, h("tr", null, [t("admin.account"), t("admin.department"), t("admin.status"), t("admin.health"),
        h("span", { class: "sr-only" }, t("admin.actions"))].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, rows));
  }

  accountForm(account) {
    const platform = h("select", { name: "platform", disabled: Boolean(account) },
      options(Object.entries(PLATFORMS), account ? account.platform : "x"));
    const handle = h("input", { name: "handle", required: true, value: account ? account.handle : "" });
    const name = h("input", { name: "name", required: true, value: account ? account.name : "" });
    const department = h("select", { name: "department", required: true },
      this.departmentOptions(account ? account.department_id : "", { none: false }));
    const active = h("input", { type: "checkbox", checked: account ? account.active : true });
    const restricted = h("input", { type: "checkbox", checked: account ? account.restricted : false });
    const platformFields = h("div", { class: "platform-fields" });
    let inputs = { settings: {}, credentials: {} };
    const renderPlatform = () => {
      const spec = PLATFORM_FIELDS[platform.value];
      inputs = { settings: {}, credentials: {} };
      const settingFields = spec.settings.map((key) => {
        const value = account && account.settings ? account.settings[key] : undefined;
        const input = key === "tls" ? h("select", null, options([["", "—"], ["none", "none"], ["starttls", "starttls"],
          ["ssl", "ssl"]], value ?? ""))
          : h("input", { type: NUMBERS.has(key) ? "number" : "text", value: value ?? "", inputmode: NUMBERS.has(key) ? "numeric" : null });
        inputs.settings[key] = input;
        return field(t(`setting.${key}`), input);
      });
      const credentialFields = spec.credentials.map((key) => {
        const input = h("input", { type: "password", autocomplete: "off" });
        inputs.credentials[key] = input;
        return field(t(`credential.${key}`), input);
      });
      fill(platformFields,
        h("fieldset", null, h("legend", null, t("admin.settings")), settingFields),
        h("fieldset", null, h("legend", null, t("admin.credentials")),
          h("p", { class: "hint" }, account ? (account.has_credentials ? t("admin.credentials_keep") : t("admin.credentials_none"))
            : t("admin.credentials_write_only")), credentialFields));
    };
    platform.addEventListener("change", renderPlatform);
    renderPlatform();
    return h("form", { class: "form-grid", onsubmit: async (e) => {
      e.preventDefault();
      const settings = { ...(account ? account.settings : {}) };
      for (const [key, input] of Object.entries(inputs.settings)) {
        if (input.value === "") delete settings[key];
        else settings[key] = NUMBERS.has(key) ? Number(input.value) : input.value;
      }
      const credentials = {};
      for (const [key, input] of Object.entries(inputs.credentials)) if (input.value) credentials[key] = input.value;
      const body = { handle: handle.value, name: name.value, department_id: Number(department.value),
        settings, active: active.checked, restricted: restricted.checked };
      if (Object.keys(credentials).length) body.credentials = credentials;
      if (account) {
        await this.save(patch(`/api/accounts/${account.id}`, body), t("admin.saved"));
      } else {
        body.platform = platform.value;
        await this.save(post("/api/accounts", body), t("admin.created"));
      }
    } },
    field(t("admin.platform"), platform), field(t("admin.handle"), handle), field(t("admin.name"), name),
    field(t("admin.department"), department),
    h("label", { class: "choice" }, active, ` ${t("admin.active")}`),
    h("label", { class: "choice" }, restricted, ` ${t("admin.restricted_long")}`),
    platformFields, this.formButtons(Boolean(account)));
  }
}

/** An account's health in words: polling fine, failing (and why), needing new credentials, or not polled yet. */
export function health(account) {
  const hl = account.health || {};
  let tone = "good";
  let label;
  if (!account.active) {
    tone = "muted";
    label = t("health.paused");
  } else if (hl.needs_reauth) {
    tone = "bad";
    label = t("health.reauth");
  } else if (hl.failures > 0) {
    tone = "warn";
    label = t("health.failing", { n: hl.failures });
  } else if (account.platform === "api") {
    label = t("health.push");
  } else if (hl.last_polled_at) {
    label = t("health.ok");
  } else {
    tone = "muted";
    label = t("health.never");
  }
  return h("div", { class: `health health-${tone}` },
    h("span", { class: "health-label" }, label),
    hl.last_polled_at ? h("span", { class: "health-detail" }, timeEl(hl.last_polled_at, { prefix: "health.polled" })) : null,
    hl.last_error ? h("span", { class: "health-detail health-error" },
      hl.last_error_at ? timeEl(hl.last_error_at, { prefix: "health.error" }) : t("health.error", { time: "?" }), " ",
      hl.last_error) : null);
}
