// Approvals: the replies waiting for a coordinator (GET /api/approvals), each approved (POST
// /api/replies/{id}/approve: queued to go out) or sent back with a comment (POST /api/replies/{id}/send-back).
// The list follows the live stream, so two coordinators never decide on a reply that is already gone.
import "./messages_assist.js";
import { get, post } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { t, tn } from "./i18n.js";
import { pages } from "./pages.js";
import { errorText, platformBadge, timeEl } from "./ui.js";

/** Live events that can change what waits. */
const CHANGES = new Set(["reply.awaiting_approval", "reply.approved", "reply.sent_back", "reply.queued",
  "conversation.closed", "conversation.reopened"]);

let current = null;
const following = new WeakSet();

class ApprovalsPage {
  constructor(ctx) {
    this.ctx = ctx;
    this.cards = new Map();
    this.count = 0;
    this.timer = null;
    this.heading = h("h1", { class: "page-title", id: "approvals-title", tabindex: "-1" }, t("approvals.title"));
    this.intro = h("p", { class: "page-intro" }, t("approvals.intro"));
    this.status = h("p", { class: "approvals-count", role: "status" });
    this.list = h("ol", { class: "approval-list", "aria-labelledby": "approvals-title" });
    this.el = h("section", { class: "admin approvals", "aria-labelledby": "approvals-title" },
      this.heading, this.intro, this.status, this.list);
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load({ live: true }), 50);
  }

  async load({ live = false } = {}) {
    let answer;
    try {
      answer = await get("/api/approvals");
    } catch (e) {
      this.status.textContent = errorText(e);
      return;
    }
    if (!this.el.isConnected && live) return;
    const before = this.count;
    // Cards that stay keep their place and any comment being written; gone ones leave, new ones join.
    const seen = new Set();
    for (const item of answer.items) {
      seen.add(item.id);
      if (!this.cards.has(item.id)) this.cards.set(item.id, this.card(item));
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.remove();
        this.cards.delete(id);
      }
    }
    this.list.append(...answer.items.map((item) => this.cards.get(item.id)));
    this.count = answer.items.length;
    this.status.textContent = this.count ? tn("approvals.count", this.count) : t("approvals.empty");
    if (live && this.count > before) announce(t("approvals.arrived"));
  }

  card(item) {
    const conversation = item.conversation || {};
    const author = conversation.author || {};
    const who = author.name || author.handle || t("conversation.unknown_author");
    const commentId = `send-back-${item.id}`;
    const comment = h("textarea", { id: commentId, rows: "2", class: "send-back-text" });
    const error = h("p", { class: "form-error", role: "alert" });
    const approve = h("button", { type: "button", class: "primary", onclick: () => this.decide(item, "approve") },
      t("approvals.approve"));
    const back = h("button", { type: "submit" }, t("approvals.send_back"));
    const buttons = [approve, back];
    const earlier = (item.reviews || []).filter((r) => r.decision === "sent_back");
    const el = h("li", { class: "approval", dataset: { reply: String(item.id) } },
      h("article", { "aria-label": t("approvals.to", { name: who, account: item.account.name }) },
        h("header", { class: "approval-head" },
          platformBadge(item.account.platform), " ",
          h("span", { class: "approval-to" }, t("approvals.to", { name: who, account: item.account.name })), " ",
          h("a", { href: `#/inbox/open/${item.conversation_id}` }, t("approvals.open", { id: item.conversation_id }))),
        conversation.subject_preview ? h("blockquote", { class: "approval-question" }, conversation.subject_preview)
          : null,
        h("p", { class: "approval-meta" }, t("approvals.by", { name: item.author.name || "?" }), " ",
          timeEl(item.submitted_at)),
        h("p", { class: "msg-text approval-text" }, item.text),
        item.rules.length ? h("p", { class: "approval-rules" },
          t("approvals.rules", { rules: item.rules.map((r) => r.name).join(", ") })) : null,
        earlier.map((r) => h("p", { class: "approval-earlier" },
          t("assist.sent_back_other", { name: (r.by && r.by.name) || "?" }), " ", h("q", null, r.comment || ""))),
        h("form", { class: "approval-actions", onsubmit: (e) => {
          e.preventDefault();
          if (!comment.value.trim()) {
            error.textContent = t("approvals.comment_needed");
            comment.focus();
            return;
          }
          this.decide(item, "send-back", { comment: comment.value });
        } },
        h("label", { for: commentId }, t("approvals.comment")), comment, error,
        h("div", { class: "form-buttons" }, buttons))));
    el.decide = (busy, message) => {
      for (const b of buttons) b.disabled = busy;
      error.textContent = message || "";
    };
    return el;
  }

  async decide(item, verb, body) {
    const card = this.cards.get(item.id);
    card?.decide(true);
    try {
      await post(`/api/replies/${item.id}/${verb}`, body);
    } catch (e) {
      card?.decide(false, errorText(e));
      this.schedule();
      return;
    }
    announce(t(verb === "approve" ? "approvals.approved" : "approvals.sent_back"));
    await this.load();
    // The focus stays on the list rather than falling back to the top of the page.
    const next = this.list.querySelector("button.primary");
    (next || this.heading).focus();
  }
}

pages.push({
  path: "approvals",
  title: () => t("nav.approvals"),
  roles: ["coordinator", "admin"],
  render: async (container, ctx) => {
    current = new ApprovalsPage(ctx);
    fill(container, current.el);
    if (!following.has(ctx)) {
      following.add(ctx);
      ctx.live.addEventListener("event", (e) => {
        const page = current;
        if (page && page.ctx === ctx && page.el.isConnected && CHANGES.has(e.detail.type)) page.schedule();
      });
      // After a drop the stream replays what was missed, but a page opened meanwhile asks again anyway.
      ctx.live.addEventListener("open", () => {
        const page = current;
        if (page && page.ctx === ctx && page.el.isConnected) page.schedule();
      });
    }
    await current.load();
  },
});
