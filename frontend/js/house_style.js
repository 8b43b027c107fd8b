// House style and approval rules, for coordinators. The house style of one account or one department's default
// (GET/PUT /api/accounts/{id}/style, /api/departments/{id}/style): signature template, length limit, banned
// phrases and required elements; for an account also what applies to it now, with where each part comes
// from. Below, the approval rules (GET/POST /api/approval-rules, DELETE /api/approval-rules/{id}): replies on
// an account, a department's accounts, by a role or by one (new) colleague wait for someone else's approval.
import "./messages_rules.js";
import { api, get, post } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { t } from "./i18n.js";
import { pages } from "./pages.js";
import { lines } from "./routing_rules.js";
import { accountTitle, createDetails, errorText, field, options } from "./ui.js";

const ROLES = ["agent", "expert", "coordinator", "admin"];

/** "a greeting: hoi; hallo" per line → [{name, any_of}]; throws the number of a line that does not fit. */
function parseRequired(text) {
  const out = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const at = line.indexOf(":");
    const name = at < 0 ? "" : line.slice(0, at).trim();
    const anyOf = at < 0 ? [] : line.slice(at + 1).split(";").map((s) => s.trim()).filter(Boolean);
    if (!name || !anyOf.length) throw new Error(t("house.required_bad", { line: i + 1 }));
    out.push({ name, any_of: anyOf });
  });
  return out;
}

const requiredText = (required) => required.map((e) => `${e.name}: ${e.any_of.join("; ")}`).join("\n");

let current = null;
const following = new WeakSet();

class HouseStylePage {
  constructor(ctx) {
    this.ctx = ctx;
    this.scope = null;
    this.rules = [];
    this.confirming = null;
    this.heading = h("h1", { class: "page-title", id: "house-title", tabindex: "-1" });
    this.intro = h("p", { class: "page-intro" });
    this.scopeBox = h("div", { class: "house-scope" });
    this.styleBox = h("div", { class: "house-style" });
    this.rulesHeading = h("h2", { class: "section-title", id: "approval-rules-title", tabindex: "-1" });
    this.rulesIntro = h("p", { class: "page-intro" });
    this.createBox = h("div", { class: "create" });
    this.table = h("div", { class: "table-wrap" });
    this.el = h("section", { class: "admin house-style-page", "aria-labelledby": "house-title" },
      this.heading, this.intro, this.scopeBox, this.styleBox,
      h("section", { class: "approval-rules", "aria-labelledby": "approval-rules-title" },
        this.rulesHeading, this.rulesIntro, this.createBox, this.table));
  }

  async load() {
    try {
      if (!this.ctx.departments.size || !this.ctx.users.size || !this.ctx.accounts.size) {
        await this.ctx.refreshReference();
      }
    } catch (e) {
      fill(this.styleBox, h("p", { role: "alert" }, errorText(e)));
      return;
    }
    this.render();
    await Promise.all([this.loadStyle(), this.loadRules()]);
  }

  render() {
    this.heading.textContent = t("house.title");
    this.intro.textContent = t("house.intro");
    this.rulesHeading.textContent = t("approval_rules.title");
    this.rulesIntro.textContent = t("approval_rules.intro");
    const accounts = [...this.ctx.accounts.values()];
    const departments = [...this.ctx.departments.values()];
    if (!this.scope) {
      this.scope = accounts.length ? `account:${accounts[0].id}` : departments.length ? `department:${departments[0].id}` : "";
    }
    const select = h("select", { name: "scope", onchange: () => {
      // A change event for the scope already shown would throw away what is being typed.
      if (select.value === this.scope) return;
      this.scope = select.value;
      this.loadStyle();
    } },
      h("optgroup", { label: t("house.accounts") }, options(accounts.map((a) => [`account:${a.id}`,
        t("house.account", { name: accountTitle(a) })]), this.scope)),
      h("optgroup", { label: t("house.departments") }, options(departments.map((d) => [`department:${d.id}`,
        t("house.department", { name: d.name })]), this.scope)));
    fill(this.scopeBox, field(t("house.scope"), select));
    if (!this.createBox.firstChild) {
      fill(this.createBox, createDetails(t("approval_rules.new"), this.ruleForm()));
    }
  }

  async loadStyle() {
    const scope = this.scope;
    if (!scope) return;
    const [kind, id] = scope.split(":");
    let answer;
    try {
      answer = await get(`/api/${kind === "account" ? "accounts" : "departments"}/${id}/style`);
    } catch (e) {
      fill(this.styleBox, h("p", { role: "alert" }, errorText(e)));
      return;
    }
    if (scope !== this.scope) return;
    fill(this.styleBox, this.styleForm(kind, Number(id), answer.style || {}), answer.effective
      ? this.effective(answer.effective) : null);
  }

  styleForm(kind, id, style) {
    const signature = h("input", { type: "text", name: "signature", maxlength: "200", value: style.signature || "" });
    const maxLength = h("input", { type: "number", name: "max_length", min: "1", max: "100000",
      value: style.max_length ? String(style.max_length) : "" });
    const banned = h("textarea", { name: "banned_phrases", rows: "4", value: (style.banned_phrases || []).join("\n") });
    const required = h("textarea", { name: "required", rows: "3", value: requiredText(style.required || []) });
    const error = h("p", { class: "form-error", role: "alert" });
    return h("form", { class: "form-grid house-form", onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      let body;
      try {
        body = { signature: signature.value.trim() || null,
          max_length: maxLength.value === "" ? null : Number(maxLength.value),
          banned_phrases: banned.value.split("\n").map((s) => s.trim()).filter(Boolean),
          required: parseRequired(required.value) };
      } catch (err) {
        error.textContent = err.message;
        required.focus();
        return;
      }
      try {
        await api("PUT", `/api/${kind === "account" ? "accounts" : "departments"}/${id}/style`, body);
      } catch (err) {
        error.textContent = errorText(err);
        return;
      }
      announce(t("house.saved"));
      await this.loadStyle();
    } }, field(t("house.signature"), signature, t("house.signature_hint")),
    field(t("house.max_length"), maxLength, t("house.max_length_hint")),
    field(t("house.banned"), banned, t("house.banned_hint")),
    field(t("house.required"), required, t("house.required_hint")), error,
    h("div", { class: "form-buttons" }, h("button", { type: "submit", class: "primary" }, t("house.save"))));
  }

  effective(style) {
    const from = (name) => (style.sources[name]
      ? [" ", h("span", { class: "hint" }, t("house.from", { source: t(`house.source.${style.sources[name]}`) }))] : null);
    const none = t("house.nothing");
    return h("div", { class: "house-effective" }, h("h2", { class: "section-title" }, t("house.effective")),
      h("dl", null,
        h("dt", null, t("house.signature")), h("dd", null, style.signature || none, from("signature")),
        h("dt", null, t("house.max_length")), h("dd", null, style.max_length ?? none, from("max_length")),
        h("dt", null, t("house.banned")), h("dd", null, style.banned_phrases.join(", ") || none),
        h("dt", null, t("house.required")), h("dd", null, requiredText(style.required) || none)));
  }

  // Approval rules

  async loadRules() {
    try {
      this.rules = (await get("/api/approval-rules")).items;
    } catch (e) {
      fill(this.table, h("p", { role: "alert" }, errorText(e)));
      return;
    }
    this.renderRules();
  }

  renderRules() {
    if (!this.rules.length) {
      fill(this.table, h("p", { class: "hint" }, t("approval_rules.empty")));
      return;
    }
    fill(this.table, h("table", { class: "data" },
      h("caption", { class: "sr-only" }, t("approval_rules.title")),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, t("approval_rules.name")),
        h("th", { scope: "col" }, t("approval_rules.conditions")), h("th", { scope: "col" }, t("admin.actions")))),
      h("tbody", null, this.rules.map((rule) => this.ruleRow(rule)))));
  }

  conditions(rule) {
    const parts = [];
    if (rule.account_id) {
      parts.push(`${t("approval_rules.account")}: ${accountTitle(this.ctx.accounts.get(rule.account_id)) || `#${rule.account_id}`}`);
    }
    if (rule.department_id) {
      parts.push(`${t("approval_rules.department")}: ${this.ctx.departments.get(rule.department_id)?.name || `#${rule.department_id}`}`);
    }
    if (rule.author_role) parts.push(`${t("approval_rules.role")}: ${t(`role.${rule.author_role}`)}`);
    if (rule.author_user_id) parts.push(`${t("approval_rules.user")}: ${this.ctx.userName(rule.author_user_id)}`);
    return parts.join(" · ");
  }

  ruleRow(rule) {
    const actions = this.confirming === rule.id
      ? [h("span", { class: "confirm-text" }, t("approval_rules.confirm", { name: rule.name })), " ",
        h("button", { type: "button", class: "danger", onclick: () => this.removeRule(rule) }, t("routing.delete")), " ",
        h("button", { type: "button", onclick: () => { this.confirming = null; this.renderRules(); } },
          t("dialog.cancel"))]
      : [h("button", { type: "button", class: "link-button", "aria-label": t("routing.delete_named", { name: rule.name }),
        onclick: () => { this.confirming = rule.id; this.renderRules(); } }, t("routing.delete"))];
    return h("tr", { dataset: { id: String(rule.id) } }, h("th", { scope: "row" }, rule.name),
      h("td", null, this.conditions(rule)), h("td", { class: "row-actions" }, actions));
  }

  ruleForm() {
    const any = ["", t("approval_rules.any")];
    const name = h("input", { type: "text", name: "name", required: true, maxlength: "200" });
    const account = h("select", { name: "account_id" }, options([any,
      ...[...this.ctx.accounts.values()].map((a) => [a.id, accountTitle(a)])], ""));
    const department = h("select", { name: "department_id" }, options([any,
      ...[...this.ctx.departments.values()].map((d) => [d.id, d.name])], ""));
    const role = h("select", { name: "author_role" }, options([any, ...ROLES.map((r) => [r, t(`role.${r}`)])], ""));
    const user = h("select", { name: "author_user_id" }, options([any,
      ...[...this.ctx.users.values()].filter((u) => u.active !== false).map((u) => [u.id, u.name])], ""));
    const error = h("p", { class: "form-error", role: "alert" });
    const id = (el) => (el.value === "" ? null : Number(el.value));
    return h("form", { class: "form-grid approval-rule-form", onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const body = { name: name.value.trim(), account_id: id(account), department_id: id(department),
        author_role: role.value || null, author_user_id: id(user) };
      if (!body.account_id && !body.department_id && !body.author_role && !body.author_user_id) {
        error.textContent = t("approval_rules.need_one");
        account.focus();
        return;
      }
      try {
        await post("/api/approval-rules", body);
      } catch (err) {
        error.textContent = errorText(err);
        return;
      }
      announce(t("admin.created"));
      fill(this.createBox);
      this.render();
      await this.loadRules();
    } }, field(t("approval_rules.name"), name), field(t("approval_rules.account"), account),
    field(t("approval_rules.department"), department), field(t("approval_rules.role"), role),
    field(t("approval_rules.user"), user), error,
    h("div", { class: "form-buttons" }, h("button", { type: "submit", class: "primary" }, t("admin.create"))));
  }

  async removeRule(rule) {
    try {
      await api("DELETE", `/api/approval-rules/${rule.id}`);
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      return;
    }
    this.confirming = null;
    announce(t("approval_rules.deleted"));
    await this.loadRules();
    this.rulesHeading.focus();
  }
}

pages.push({
  path: "house-style",
  title: () => t("nav.house_style"),
  roles: ["coordinator", "admin"],
  render: async (container, ctx) => {
    current = new HouseStylePage(ctx);
    fill(container, current.el);
    if (!following.has(ctx)) {
      following.add(ctx);
      // A colleague's new or deleted approval rule shows here too; the style form is left alone.
      ctx.live.addEventListener("event", (e) => {
        const page = current;
        if (page && page.el.isConnected && page.ctx === ctx && e.detail.type.startsWith("approval_rule.")
            && page.confirming === null) page.loadRules();
      });
    }
    await current.load();
  },
});
