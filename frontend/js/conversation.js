// One conversation: who wrote, on which account, what was said (inbound, our replies with their state,
// internal notes), what can be done with it, and the composer.
import { ApiError, get, post } from "./api.js";
import { Composer } from "./composer.js";
import { announce, fill, h } from "./dom.js";
import { t } from "./i18n.js";
import { conversationPanels } from "./pages.js";
import { messageText } from "./text.js";
import { accountTitle, errorText, platformBadge, statusChip, timeEl } from "./ui.js";

export class ConversationPane {
  constructor(ctx, inbox) {
    this.ctx = ctx;
    this.inbox = inbox;
    this.detail = null;
    this.ready = Promise.resolve();
    this.messageEls = new Map();
    this.viewers = [];
    this.generation = 0;
    this.heading = h("h2", { id: "conversation-title", class: "conversation-title", tabindex: "-1" });
    this.meta = h("div", { class: "conversation-meta" });
    this.actions = h("div", { class: "actions", role: "toolbar", "aria-label": t("conversation.actions") });
    this.presenceLine = h("p", { class: "presence", role: "status" });
    this.messages = h("ol", { class: "messages", "aria-label": t("conversation.messages") });
    this.composer = new Composer(ctx, this);
    // Room for what other parts add beside a conversation (assist: similar questions, saved replies).
    this.panels = h("aside", { class: "panels", "aria-label": t("conversation.panels") });
    this.back = h("button", { type: "button", class: "back", onclick: () => this.inbox.closePane() },
      t("conversation.back"));
    this.body = h("div", { class: "conversation-body" },
      h("header", { class: "conversation-head" }, this.back, this.heading, this.meta, this.actions, this.presenceLine),
      h("div", { class: "messages-scroll" }, this.messages, this.panels),
      this.composer.el);
    this.empty = h("div", { class: "pane-empty" }, h("p", null, t("conversation.none")),
      h("p", { class: "hint" }, t("conversation.none_hint")));
    this.el = h("section", { class: "pane", "aria-labelledby": "conversation-title" }, this.empty);
  }

  relabel() {
    this.actions.setAttribute("aria-label", t("conversation.actions"));
    this.messages.setAttribute("aria-label", t("conversation.messages"));
    this.back.textContent = t("conversation.back");
    fill(this.empty, h("p", null, t("conversation.none")), h("p", { class: "hint" }, t("conversation.none_hint")));
    this.composer.relabel();
    if (this.detail) this.render(this.detail, { full: true });
  }

  /** Show conversation `id` (null: none); `ready` settles once it is on screen. */
  show(id) {
    this.ready = this.load(id);
    return this.ready;
  }

  async load(id) {
    const generation = ++this.generation;
    // Presence for the new conversation may arrive before its messages do.
    const seen = this.inbox.presence.get(id) || {};
    this.viewers = seen["presence.viewing"] || [];
    this.typers = seen["presence.typing"] || [];
    this.ctx.live.view(id);
    if (id === null) {
      this.composer.bind(null);
      this.detail = null;
      this.el.replaceChildren(this.empty);
      return;
    }
    let detail;
    try {
      detail = await get(`/api/conversations/${id}`);
    } catch (e) {
      if (generation !== this.generation) return;
      this.detail = null;
      this.composer.bind(null);
      fill(this.el, h("div", { class: "pane-empty" }, h("p", { role: "alert" }, errorText(e))));
      return;
    }
    if (generation !== this.generation) return;
    this.messageEls.clear();
    this.messages.replaceChildren();
    this.detail = detail;
    this.el.replaceChildren(this.body);
    this.composer.bind(detail);
    this.composer.setTypers(this.typers);
    this.render(detail, { full: true });
    this.inbox.upsert(detail);
    this.scrollToEnd();
    const author = detail.author || {};
    announce(t("conversation.opened", { name: author.name || author.handle || "" }), { visual: false });
    // On a phone the queue makes way for the conversation: the focus goes along.
    if (window.matchMedia("(max-width: 860px)").matches) this.heading.focus();
  }

  update(detail) {
    if (!this.detail || detail.id !== this.detail.id) return;
    const grew = detail.messages.length > this.detail.messages.length;
    this.detail = detail;
    this.render(detail, { full: false });
    if (grew) this.scrollToEnd();
  }

  scrollToEnd() {
    const scroller = this.messages.parentElement;
    scroller.scrollTop = scroller.scrollHeight;
  }

  render(d, { full }) {
    const { me } = this.ctx;
    const account = this.ctx.accounts.get(d.account_id);
    const author = d.author || {};
    fill(this.heading, author.name || author.handle || t("conversation.unknown_author"),
      author.handle && author.name ? h("span", { class: "handle" }, ` @${author.handle}`) : null);
    const claimed = d.claimed_by;
    fill(this.meta,
      account ? platformBadge(account.platform) : null,
      h("span", { class: "meta-account" }, accountTitle(account)),
      statusChip(d.status, Boolean(claimed)),
      claimed ? h("span", { class: `tag ${claimed.id === me.id ? "tag-mine" : "tag-claimed"}` },
        claimed.id === me.id ? t("queue.claimed_by_you") : t("queue.claimed_by", { name: claimed.name || "?" })) : null,
      d.assignee && d.status === "escalated"
        ? h("span", { class: "tag tag-assignee" }, t("queue.escalated_to", { name: d.assignee.name || "?" })) : null,
      d.close_reason && d.status === "closed"
        ? h("span", { class: "tag" }, t(`close.${d.close_reason}`)) : null,
      d.waiting_since ? timeEl(d.waiting_since, { prefix: "queue.waiting", className: "waiting" }) : null,
      (d.links || []).length ? h("span", { class: "links" }, t("conversation.linked"), " ",
        d.links.map((l) => h("a", { href: `#/inbox/${this.inbox.viewKey}/${l.conversation_id}`, class: "tag" },
          `${t(`link.${l.kind}`)} #${l.conversation_id}`))) : null);
    this.renderActions(d);
    this.renderMessages(d, full);
    this.renderPresence();
    this.composer.update(d);
    this.renderPanels(d, full);
  }

  renderPanels(d, full) {
    if (full) this.panels.replaceChildren();
    for (const [i, panel] of conversationPanels.entries()) {
      let slot = this.panels.children[i];
      if (!slot) slot = this.panels.appendChild(h("section", { class: "panel" }));
      try {
        panel(d, slot, this.ctx);
      } catch (e) {
        console.warn("a conversation panel failed", e);
      }
    }
    this.panels.hidden = !conversationPanels.length;
  }

  renderActions(d) {
    const { me } = this.ctx;
    const claimedByMe = d.claimed_by && d.claimed_by.id === me.id;
    const claimedByOther = d.claimed_by && !claimedByMe;
    const assignedToMe = d.status === "escalated" && d.assignee && (
      (d.assignee.type === "user" && d.assignee.id === me.id)
      || (d.assignee.type === "department" && d.assignee.id === me.department_id));
    const button = (label, key, onclick, cls = "") => h("button", { type: "button", class: `action ${cls}`,
      onclick, "aria-keyshortcuts": key }, label, h("kbd", { "aria-hidden": "true" }, key));
    const id = d.id;
    fill(this.actions,
      d.status !== "closed" && !d.claimed_by ? button(t("action.claim"), "c", () => this.inbox.claim(id), "primary") : null,
      claimedByMe || assignedToMe || (claimedByOther && this.ctx.me.role !== "agent" && this.ctx.me.role !== "expert")
        ? button(assignedToMe && !claimedByMe ? t("action.hand_back") : t("action.release"), "u",
          () => this.inbox.release(id)) : null,
      d.status !== "closed" ? button(t("action.escalate"), "e", () => this.escalate()) : null,
      d.status !== "closed" ? button(t("action.close"), "x", () => this.close()) : null,
      d.status === "closed" || d.status === "answered"
        ? button(t("action.reopen"), "Shift+R", () => this.inbox.reopen(id)) : null);
  }

  renderMessages(d, full) {
    if (full) {
      this.messageEls.clear();
      this.messages.replaceChildren();
    }
    const seen = new Set();
    for (const m of d.messages) {
      seen.add(m.id);
      const key = JSON.stringify([m.state, m.reply && m.reply.error, m.reply && m.reply.attempts]);
      const old = this.messageEls.get(m.id);
      if (old && old.key === key) continue;
      const el = this.messageEl(m);
      if (old) old.el.replaceWith(el);
      else this.messages.appendChild(el);
      this.messageEls.set(m.id, { el, key });
    }
    for (const [id, { el }] of this.messageEls) {
      if (!seen.has(id)) {
        el.remove();
        this.messageEls.delete(id);
      }
    }
  }

  messageEl(m) {
    const author = m.author || {};
    const kind = m.direction === "in" ? "in" : m.direction === "out" ? "out" : "note";
    const who = m.direction === "in"
      ? [h("span", { class: "author-name" }, author.name || author.handle || t("conversation.unknown_author")),
        author.handle && author.name ? h("span", { class: "handle" }, ` @${author.handle}`) : null]
      : [h("span", { class: "author-name" }, author.name || t("conversation.colleague"))];
    return h("li", { class: `msg msg-${kind}`, id: `m-${m.id}` },
      h("div", { class: "msg-meta" },
        h("span", { class: "msg-kind" }, t(`message.${kind}`)), " ", who, " ",
        timeEl(m.created_at, { className: "msg-time" })),
      h("p", { class: "msg-text" }, messageText(m.text || "")),
      m.direction === "out" ? this.replyState(m) : null);
  }

  replyState(m) {
    const state = m.state || "queued";
    const reply = m.reply || {};
    return h("div", { class: `reply-state state-${state}`, role: state === "failed" ? "alert" : null },
      h("span", { class: "state-label", dataset: { state } }, t(`reply.${state}`)),
      state === "sent" && reply.sent_at ? [" ", timeEl(reply.sent_at)] : null,
      state === "failed" && reply.error ? h("span", { class: "state-reason" }, reply.error) : null,
      state === "failed" && reply.id ? h("button", { type: "button", class: "retry",
        onclick: (e) => this.retry(reply.id, e.currentTarget) }, t("reply.retry")) : null);
  }

  async retry(replyId, button) {
    button.disabled = true;
    try {
      await post(`/api/replies/${replyId}/retry`);
      announce(t("done.retrying"));
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      button.disabled = false;
    }
    this.inbox.queueRefresh(this.detail.id);
  }

  // Presence: who else has it open, and who is typing a reply

  onPresence(frame) {
    if (frame.type === "presence.viewing") this.viewers = frame.users;
    else this.typers = frame.users;
    this.renderPresence();
    this.composer.setTypers(this.typers || []);
  }

  renderPresence() {
    const names = (this.viewers || []).map((u) => u.name);
    this.presenceLine.textContent = names.length ? t("conversation.also_here", { names: names.join(", ") }) : "";
  }

  onEvent(event) {
    // The fresh copy follows through the inbox; a reply that was sent is worth saying out loud.
    if (event.type === "reply.sent" && event.actor_id === this.ctx.me.id) announce(t("done.sent"));
    if (event.type === "reply.failed" && event.actor_id === this.ctx.me.id) {
      announce(t("done.failed"), { tone: "error" });
    }
  }

  // Actions with a dialog

  async escalate() {
    if (!this.detail) return;
    const id = this.detail.id;
    // New colleagues and departments may have come since the page loaded.
    await this.ctx.refreshReference().catch(() => null);
    const { escalateDialog } = await import("./dialogs.js");
    const choice = await escalateDialog(this.ctx);
    if (!choice) return;
    await this.inbox.act(id, "escalate", choice, t("done.escalated"));
  }

  async close() {
    if (!this.detail) return;
    const id = this.detail.id;
    const { closeDialog } = await import("./dialogs.js");
    const reason = await closeDialog();
    if (!reason) return;
    await this.inbox.act(id, "close", { reason }, t("done.closed"));
  }

  async send(mode, text) {
    const id = this.detail.id;
    try {
      if (mode === "note") {
        await post(`/api/conversations/${id}/notes`, { text });
        announce(t("done.noted"));
      } else {
        const { reply } = await post(`/api/conversations/${id}/replies`, { text });
        announce(t(reply && reply.state === "awaiting_approval" ? "done.awaiting_approval" : "done.queued"));
      }
      this.inbox.queueRefresh(id);
      this.inbox.scheduleViews();
      return true;
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      if (e instanceof ApiError && e.status === 409) this.inbox.queueRefresh(id);
      return e;
    }
  }
}
