// Surges: many different people writing about the same thing at once (GET /api/clusters, GET
// /api/clusters/{id}), and answering one as a whole with a saved reply (POST /api/clusters/{id}/replies). The
// server makes one reply per waiting conversation through the normal reply path, personalised per person
// and under the house style and approval rules; this page says per conversation what became of it. The list
// follows the live stream: a new surge or a grown one shows by itself.
import "./messages_rules.js";
import { get, post } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { t, tn } from "./i18n.js";
import { pages } from "./pages.js";
import { accountTitle, errorText, field, options, statusChip, timeEl } from "./ui.js";

/** Live events after which a surge's size or what still waits in it may differ. */
const CHANGES = new Set(["cluster.created", "cluster.grown", "reply.queued", "reply.awaiting_approval",
  "reply.sent", "conversation.closed", "conversation.reopened", "conversation.answered"]);

const WAITING = ["open", "claimed", "escalated"];

let current = null;
const following = new WeakSet();

class SurgesPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.cards = new Map();
    this.saved = null;
    this.timer = null;
    this.heading = h("h1", { class: "page-title", id: "surges-title", tabindex: "-1" }, t("surges.title"));
    this.intro = h("p", { class: "page-intro" }, t("surges.intro"));
    this.status = h("p", { class: "surges-count", role: "status" });
    this.list = h("ol", { class: "surge-list", "aria-labelledby": "surges-title" });
    this.el = h("section", { class: "admin surges", "aria-labelledby": "surges-title" },
      this.heading, this.intro, this.status, this.list);
  }

  schedule(event) {
    if (event && (event.type === "cluster.created" || event.type === "cluster.grown")) {
      this.news = event.type;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load({ live: true }), 100);
  }

  async load({ live = false } = {}) {
    let answer;
    try {
      [answer] = await Promise.all([get("/api/clusters?limit=50"), this.saved ? null : this.loadSaved()]);
    } catch (e) {
      this.status.textContent = errorText(e);
      return;
    }
    if (live && !this.el.isConnected) return;
    // Cards that stay keep their place, an answer being chosen and the results shown; new ones join on top.
    const seen = new Set();
    for (const item of answer.items) {
      seen.add(item.id);
      const card = this.cards.get(item.id) || new SurgeCard(this, item);
      this.cards.set(item.id, card);
      card.update(item);
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    this.list.append(...answer.items.map((item) => this.cards.get(item.id).el));
    this.status.textContent = answer.items.length ? tn("surges.count", answer.items.length) : t("surges.empty");
    const news = this.news;
    this.news = null;
    if (live && news && answer.items[0]) {
      announce(t(news === "cluster.created" ? "surges.new" : "surges.grew", { topic: answer.items[0].topic || "" }));
    }
  }

  async loadSaved() {
    this.saved = (await get("/api/saved-replies?limit=200")).items;
  }
}

class SurgeCard {
  constructor(page, item) {
    this.page = page;
    this.item = item;
    this.open = false;
    this.detail = null;
    this.confirming = false;
    this.busy = false;
    // Answered from this page: a conversation stays "claimed" until its reply is sent, and must not be
    // answered twice meanwhile. (A colleague answering at once is refused per conversation by its claim.)
    this.answered = new Set();
    const n = item.id;
    this.titleId = `surge-${n}-title`;
    this.title = h("h2", { class: "surge-topic", id: this.titleId });
    this.meta = h("p", { class: "surge-meta" });
    this.toggle = h("button", { type: "button", class: "link-button surge-toggle", "aria-expanded": "false",
      "aria-controls": `surge-${n}-members`, onclick: () => this.flip() });
    this.members = h("ul", { class: "surge-members", id: `surge-${n}-members`, hidden: true,
      "aria-label": t("surges.members") });
    this.select = h("select", { name: "saved_reply_id", id: `surge-${n}-saved`,
      onchange: () => { this.confirming = false; this.renderActions(); this.preview(); } });
    this.previewBox = h("div", { class: "surge-preview" });
    this.actions = h("div", { class: "form-buttons" });
    this.error = h("p", { class: "form-error", role: "alert" });
    this.results = h("ul", { class: "surge-results", "aria-label": t("surges.members") });
    this.form = h("form", { class: "surge-answer", onsubmit: (e) => {
      e.preventDefault();
      if (!this.select.value) {
        this.select.focus();
        return;
      }
      this.confirming = true;
      this.renderActions();
      this.actions.querySelector("button.primary")?.focus();
    } }, field(t("surges.saved_reply"), this.select), this.previewBox, this.actions, this.error);
    this.el = h("li", { class: "surge", dataset: { cluster: String(n) } },
      h("article", { "aria-labelledby": this.titleId }, this.title, this.meta, this.toggle, this.members,
        this.form, this.results));
    this.fillSaved();
  }

  fillSaved() {
    const saved = this.page.saved || [];
    fill(this.select, options([["", t("surges.choose")], ...saved.map((s) => [s.id, s.title])], this.select.value));
    this.select.disabled = !saved.length;
    if (!saved.length) this.error.textContent = t("surges.no_saved");
  }

  update(item) {
    const grew = item.size !== this.item.size || item.waiting !== this.item.waiting;
    this.item = item;
    this.title.textContent = item.topic ? t("surges.topic", { topic: item.topic }) : t("surges.no_topic", { id: item.id });
    fill(this.meta, h("span", { class: "chip chip-open" }, tn("surges.size", item.size)), " ",
      h("span", { class: item.waiting ? "surge-waiting" : "hint" }, tn("surges.waiting", item.waiting)), " · ",
      t("surges.since"), " ", timeEl(item.created_at), " · ", t("surges.last"), " ", timeEl(item.last_at));
    this.toggle.textContent = t(this.open ? "surges.hide" : "surges.show");
    if (grew && (this.open || this.detail)) this.loadMembers();
    if (grew) this.confirming = false;
    this.renderActions();
  }

  /** How many still wait and were not answered from here yet. */
  pending() {
    if (!this.detail) return this.item.waiting;
    return this.detail.conversations.filter((c) => WAITING.includes(c.status) && !this.answered.has(c.id)).length;
  }

  renderActions() {
    const waiting = this.pending();
    if (this.confirming) {
      fill(this.actions, h("span", { class: "confirm-text" }, t("surges.confirm", { n: waiting })), " ",
        h("button", { type: "button", class: "primary", disabled: this.busy, onclick: () => this.answer() },
          t("surges.confirm_yes")), " ",
        h("button", { type: "button", disabled: this.busy, onclick: () => { this.confirming = false; this.renderActions(); } },
          t("dialog.cancel")));
      return;
    }
    fill(this.actions, h("button", { type: "submit", class: "primary", disabled: this.busy || !waiting
      || this.select.disabled }, this.busy ? t("surges.answering") : t("surges.answer", { n: waiting })));
  }

  async flip() {
    this.open = !this.open;
    this.toggle.setAttribute("aria-expanded", String(this.open));
    this.toggle.textContent = t(this.open ? "surges.hide" : "surges.show");
    this.members.hidden = !this.open;
    if (this.open) await this.loadMembers();
  }

  async loadMembers() {
    try {
      this.detail = await get(`/api/clusters/${this.item.id}`);
    } catch (e) {
      fill(this.members, h("li", { role: "alert" }, errorText(e)));
      return;
    }
    // Once a reply went out (answered, closed) a later message from that person may be answered again.
    for (const c of this.detail.conversations) if (!WAITING.includes(c.status)) this.answered.delete(c.id);
    const accounts = this.page.ctx.accounts;
    fill(this.members, this.detail.conversations.map((c) => h("li", { class: "surge-member",
      dataset: { conversation: String(c.id) } },
    h("a", { href: `#/inbox/open/${c.id}` }, t("surges.open", { id: c.id })), " ",
    h("span", { class: "surge-author" }, c.author.name || c.author.handle || t("conversation.unknown_author")), " ",
    statusChip(c.status), " ",
    h("span", { class: "hint" }, accountTitle(accounts.get(c.account_id))),
    h("p", { class: "msg-text surge-text" }, c.subject_preview || ""))));
    this.renderActions();
  }

  /** What the chosen saved reply becomes for the first person who still waits. */
  async preview() {
    const id = this.select.value;
    fill(this.previewBox);
    if (!id) return;
    if (!this.detail) await this.loadMembers();
    const first = this.detail?.conversations.find((c) => WAITING.includes(c.status));
    if (!first) return;
    try {
      const rendered = await post(`/api/saved-replies/${id}/render`, { conversation_id: first.id });
      if (this.select.value !== id) return;
      fill(this.previewBox, h("p", { class: "hint" }, t("surges.preview", {
        name: first.author.name || first.author.handle || "?" })), h("p", { class: "msg-text surge-preview-text" },
        rendered.text));
    } catch (e) {
      fill(this.previewBox, h("p", { class: "form-error" }, errorText(e)));
    }
  }

  async answer() {
    if (this.busy) return;
    this.busy = true;
    this.error.textContent = "";
    this.renderActions();
    let done;
    try {
      done = await post(`/api/clusters/${this.item.id}/replies`, { saved_reply_id: Number(this.select.value) });
    } catch (e) {
      this.busy = false;
      this.confirming = false;
      this.error.textContent = errorText(e);
      this.renderActions();
      return;
    }
    this.busy = false;
    this.confirming = false;
    for (const r of done.replies) this.answered.add(r.conversation_id);
    const names = new Map((this.detail?.conversations || []).map((c) => [c.id, c.author.name || c.author.handle]));
    const who = (id) => [h("a", { href: `#/inbox/open/${id}` }, t("surges.open", { id })),
      names.get(id) ? [" ", h("span", { class: "surge-author" }, names.get(id))] : null, ": "];
    fill(this.results,
      done.replies.map((r) => h("li", { class: "surge-result result-reply", dataset: { conversation: String(r.conversation_id) } },
        who(r.conversation_id), t("surges.result_reply", { state: t(`reply.${r.reply.state}`) }))),
      done.skipped.map((s) => h("li", { class: "surge-result result-skipped", dataset: { conversation: String(s.conversation_id) } },
        who(s.conversation_id), t("surges.result_skipped", { message: errorText(s.error) }))));
    announce(t("surges.answered", { replies: done.replies.length, skipped: done.skipped.length }));
    this.renderActions();
    await this.page.load();
    if (this.open) await this.loadMembers();
  }
}

pages.push({
  path: "surges",
  title: () => t("nav.surges"),
  roles: ["coordinator", "admin"],
  render: async (container, ctx) => {
    current = new SurgesPage(ctx);
    fill(container, current.el);
    if (!following.has(ctx)) {
      following.add(ctx);
      ctx.live.addEventListener("event", (e) => {
        const page = current;
        if (page && page.ctx === ctx && page.el.isConnected && CHANGES.has(e.detail.type)) page.schedule(e.detail);
      });
      ctx.live.addEventListener("open", () => {
        const page = current;
        if (page && page.ctx === ctx && page.el.isConnected) page.schedule();
      });
    }
    await current.load();
  },
});
