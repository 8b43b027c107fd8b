// Saved replies: found from the composer by fuzzy search (GET /api/saved-replies?q=), inserted with their
// variables filled in for the conversation (POST /api/saved-replies/{id}/render), and a page where
// coordinators keep them.
import "./messages_assist.js";
import { api, patch, post, query } from "./api.js";
import { insertIntoComposer } from "./assist.js";
import { announce, fill, h } from "./dom.js";
import { t, tn } from "./i18n.js";
import { composerHints, pages } from "./pages.js";
import { createDetails, errorText, field, loadItems, options } from "./ui.js";

const SEARCH_DELAY_MS = 150;
const SHOWN = 8;

let pickers = 0;

/** A combobox under the composer: type to search, arrows to choose, Enter to insert, Escape to close. */
class Picker {
  constructor(slot) {
    const n = ++pickers;
    this.conversation = null;
    this.items = [];
    this.active = -1;
    this.timer = null;
    this.controller = null;
    this.listId = `saved-list-${n}`;
    this.input = h("input", { type: "text", id: `saved-search-${n}`, class: "saved-search", autocomplete: "off",
      role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": this.listId,
      oninput: () => this.schedule(), onkeydown: (e) => this.onKey(e), onblur: () => this.close() });
    this.label = h("label", { for: this.input.id, class: "saved-label" });
    this.list = h("ul", { id: this.listId, class: "saved-list", role: "listbox", hidden: true });
    this.el = h("div", { class: "saved-picker" }, this.label, h("div", { class: "saved-box" }, this.input, this.list));
    fill(slot, this.el);
    this.relabel();
  }

  relabel() {
    this.label.textContent = t("saved.search");
    this.input.placeholder = t("saved.placeholder");
    this.list.setAttribute("aria-label", t("saved.results"));
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.search(), SEARCH_DELAY_MS);
  }

  async search() {
    if (!this.conversation) return;
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    let answer;
    try {
      answer = await api("GET", `/api/saved-replies${query({ q: this.input.value.trim(),
        conversation_id: this.conversation.id, limit: SHOWN })}`, undefined, { signal: controller.signal });
    } catch (e) {
      if (this.controller === controller) announce(errorText(e), { tone: "error" });
      return;
    }
    if (this.controller !== controller || !answer || document.activeElement !== this.input) return;
    this.controller = null;
    this.items = answer.items;
    this.active = this.items.length ? 0 : -1;
    this.render();
    announce(this.items.length ? tn("saved.found", this.items.length) : t("saved.none"), { visual: false });
  }

  render() {
    const open = this.items.length > 0 || this.input.value.trim() !== "";
    fill(this.list, this.items.length ? this.items.map((item, i) => h("li", {
      id: `${this.listId}-${item.id}`, role: "option", class: "saved-option", "aria-selected": String(i === this.active),
      // Keep the focus in the field, so the click lands and Escape still closes.
      onmousedown: (e) => e.preventDefault(), onclick: () => this.pick(item) },
    h("span", { class: "saved-title" }, item.title),
    item.department ? h("span", { class: "saved-department" }, item.department) : null,
    h("span", { class: "saved-preview" }, item.rendered || item.text)))
      : h("li", { class: "saved-empty", role: "presentation" }, t("saved.none")));
    this.list.hidden = !open;
    this.input.setAttribute("aria-expanded", String(open));
    this.markActive();
  }

  markActive() {
    const options = [...this.list.querySelectorAll("[role=option]")];
    options.forEach((el, i) => el.setAttribute("aria-selected", String(i === this.active)));
    const current = options[this.active];
    if (current) {
      this.input.setAttribute("aria-activedescendant", current.id);
      current.scrollIntoView({ block: "nearest" });
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  }

  close() {
    clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.items = [];
    this.active = -1;
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  onKey(e) {
    const open = !this.list.hidden;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!open || !this.items.length) {
        this.search();
        return;
      }
      const step = e.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.items.length) % this.items.length;
      this.markActive();
    } else if (e.key === "Enter") {
      // Never the composer's form: Enter here inserts, it does not send.
      e.preventDefault();
      if (open && this.items[this.active]) this.pick(this.items[this.active]);
      else this.search();
    } else if (e.key === "Escape" && open) {
      e.preventDefault();
      this.close();
    }
  }

  async pick(item) {
    const conversation = this.conversation;
    this.close();
    let rendered;
    try {
      rendered = await post(`/api/saved-replies/${item.id}/render`, { conversation_id: conversation.id });
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      return;
    }
    if (this.conversation !== conversation) return;
    this.input.value = "";
    if (insertIntoComposer(rendered.text)) announce(t("saved.inserted", { title: item.title }));
  }
}

const bySlot = new WeakMap();

composerHints.push(({ conversation, mode }, slot) => {
  let picker = bySlot.get(slot);
  if (!picker) {
    picker = new Picker(slot);
    bySlot.set(slot, picker);
  }
  if (picker.conversation && picker.conversation.id !== conversation.id) picker.close();
  picker.conversation = conversation;
  picker.relabel();
  slot.hidden = mode !== "reply";
});

// The page where coordinators keep them

let current = null;
const following = new WeakSet();

class SavedRepliesPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.items = [];
    this.editing = null;
    this.confirming = null;
    this.heading = h("h1", { class: "page-title", id: "saved-title", tabindex: "-1" });
    this.intro = h("p", { class: "page-intro" });
    this.createBox = h("div", { class: "create" });
    this.table = h("div", { class: "table-wrap" });
    this.el = h("section", { class: "admin saved-replies", "aria-labelledby": "saved-title" },
      this.heading, this.intro, this.createBox, this.table);
  }

  async load() {
    const items = await loadItems("/api/saved-replies?limit=200", this.table,
      this.ctx.departments.size ? null : () => this.ctx.refreshReference());
    if (!items) return;
    this.items = items;
    this.render();
  }

  render() {
    this.heading.textContent = t("nav.saved_replies");
    this.intro.textContent = t("saved.intro");
    if (!this.createBox.firstChild) {
      fill(this.createBox, createDetails(t("saved.new"), this.form(null)));
    }
    if (!this.items.length) {
      fill(this.table, h("p", { class: "hint" }, t("saved.empty")));
      return;
    }
    fill(this.table, h("table", { class: "data" },
      h("caption", { class: "sr-only" }, t("nav.saved_replies")),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, t("saved.title")),
        h("th", { scope: "col" }, t("saved.department")), h("th", { scope: "col" }, t("saved.text")),
        h("th", { scope: "col" }, t("admin.actions")))),
      h("tbody", null, this.items.map((item) => this.row(item)))));
  }

  row(item) {
    if (this.editing === item.id) return h("tr", { class: "editing" }, h("td", { colspan: "4" }, this.form(item)));
    const actions = this.confirming === item.id
      ? [h("span", { class: "confirm-text" }, t("saved.confirm", { name: item.title })), " ",
        h("button", { type: "button", class: "danger", onclick: () => this.remove(item) }, t("saved.delete")), " ",
        h("button", { type: "button", onclick: () => { this.confirming = null; this.render(); } }, t("dialog.cancel"))]
      : [h("button", { type: "button", class: "link-button", "aria-label": t("admin.edit_named", { name: item.title }),
        onclick: () => { this.editing = item.id; this.confirming = null; this.render(); } }, t("admin.edit")), " ",
      h("button", { type: "button", class: "link-button", "aria-label": t("saved.delete_named", { name: item.title }),
        onclick: () => { this.confirming = item.id; this.render(); } }, t("saved.delete"))];
    return h("tr", { dataset: { id: String(item.id) } },
      h("th", { scope: "row" }, item.title),
      h("td", null, item.department || this.ctx.departments.get(item.department_id)?.name || "—"),
      h("td", null, h("p", { class: "msg-text saved-text" }, item.text)),
      h("td", { class: "row-actions" }, actions));
  }

  form(item) {
    const title = h("input", { type: "text", name: "title", required: true, maxlength: "200", value: item ? item.title : "" });
    const text = h("textarea", { name: "text", rows: "4", required: true, value: item ? item.text : "" });
    const department = h("select", { name: "department_id", required: true },
      options([...this.ctx.departments.values()].map((d) => [d.id, d.name]),
        item ? item.department_id : this.ctx.me.department_id ?? ""));
    const error = h("p", { class: "form-error", role: "alert" });
    const buttons = [h("button", { type: "submit", class: "primary" }, item ? t("admin.save") : t("admin.create"))];
    if (item) {
      buttons.unshift(h("button", { type: "button", onclick: () => { this.editing = null; this.render(); } },
        t("dialog.cancel")));
    }
    return h("form", { class: "form-grid saved-form", onsubmit: async (e) => {
      e.preventDefault();
      const body = { title: title.value.trim(), text: text.value, department_id: Number(department.value) };
      try {
        if (item) await patch(`/api/saved-replies/${item.id}`, body);
        else await post("/api/saved-replies", body);
      } catch (err) {
        error.textContent = errorText(err);
        return;
      }
      announce(item ? t("admin.saved") : t("admin.created"));
      this.editing = null;
      if (!item) fill(this.createBox);
      await this.load();
    } }, field(t("saved.title"), title), field(t("saved.department"), department),
    h("div", { class: "wide" }, field(t("saved.text"), text, t("saved.variables"))), error,
    h("div", { class: "form-buttons" }, buttons));
  }

  async remove(item) {
    try {
      await api("DELETE", `/api/saved-replies/${item.id}`);
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      return;
    }
    this.confirming = null;
    announce(t("saved.deleted"));
    await this.load();
  }
}

pages.push({
  path: "saved-replies",
  title: () => t("nav.saved_replies"),
  roles: ["coordinator", "admin"],
  render: async (container, ctx) => {
    current = new SavedRepliesPage(ctx);
    fill(container, current.el);
    if (!following.has(ctx)) {
      following.add(ctx);
      // A colleague's change shows here too; an open form is left alone.
      ctx.live.addEventListener("event", (e) => {
        const page = current;
        if (page && page.el.isConnected && page.ctx === ctx && e.detail.type.startsWith("saved_reply.")
            && page.editing === null) page.load();
      });
    }
    await current.load();
  },
});
