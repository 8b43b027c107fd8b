// The reply composer: which account the reply goes out from, characters against the platform's limit,
// a draft per conversation that survives a reload, and a warning when a colleague is typing here too.
import { h, fill } from "./dom.js";
import { composerHints } from "./pages.js";
import { t } from "./i18n.js";
import { accountTitle, errorText, PLATFORMS, replyLength, replyLimit } from "./ui.js";

const TYPING_RENEW_MS = 3000;
const TYPING_IDLE_MS = 5000;

export class Composer {
  constructor(ctx, pane) {
    this.ctx = ctx;
    this.pane = pane;
    this.detail = null;
    this.mode = "reply";
    this.typers = [];
    this.typingSent = 0;
    this.idleTimer = null;
    this.sending = false;

    const radio = (mode) => {
      const input = h("input", { type: "radio", name: "composer-mode", value: mode, checked: mode === "reply",
        onchange: () => this.setMode(mode) });
      const label = h("span", null, "");
      return { input, label, el: h("label", { class: `mode mode-${mode}` }, input, label) };
    };
    this.modes = { reply: radio("reply"), note: radio("note") };
    this.legend = h("legend", { class: "sr-only" });
    this.textarea = h("textarea", { id: "composer-text", rows: "4", class: "composer-text",
      oninput: () => this.onInput(), onkeydown: (e) => this.onKey(e), onblur: () => this.stopTyping() });
    this.label = h("label", { for: "composer-text", class: "sr-only" });
    this.from = h("p", { class: "composer-from", id: "composer-from" });
    this.counter = h("span", { class: "counter", id: "composer-counter", "aria-live": "polite" });
    this.warning = h("p", { class: "composer-warning", role: "status" });
    this.blocked = h("p", { class: "composer-blocked" });
    this.hints = h("div", { class: "composer-hints", dataset: { slot: "composer-hints" } });
    this.sendButton = h("button", { type: "submit", class: "primary send" });
    this.textarea.setAttribute("aria-describedby", "composer-from composer-counter");
    this.el = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      h("fieldset", { class: "modes" }, this.legend, this.modes.reply.el, this.modes.note.el),
      this.from, this.warning, this.blocked, this.label, this.textarea, this.hints,
      h("div", { class: "composer-foot" }, this.counter, this.sendButton));
    this.relabel();
  }

  relabel() {
    this.legend.textContent = t("composer.mode");
    this.modes.reply.label.textContent = t("composer.reply");
    this.modes.note.label.textContent = t("composer.note");
    this.renderContext();
    this.renderTypers();
  }

  draftKey(id = this.detail && this.detail.id, mode = this.mode) {
    return `webcare:draft:${this.ctx.me.id}:${id}:${mode}`;
  }

  /** Show this conversation (null: none); the draft of the one before is kept. */
  bind(detail) {
    if (this.detail) {
      this.saveDraft();
      this.stopTyping();
    }
    const changed = !this.detail || !detail || detail.id !== this.detail.id;
    this.detail = detail;
    if (!detail) return;
    if (changed) {
      this.typers = [];
      this.mode = localStorage.getItem(this.draftKey(detail.id, "note")) && !localStorage.getItem(
        this.draftKey(detail.id, "reply")) ? "note" : "reply";
      this.modes[this.mode].input.checked = true;
      this.textarea.value = localStorage.getItem(this.draftKey()) || "";
    }
    this.renderContext();
    this.renderTypers();
    this.hints.replaceChildren();
    this.renderHints();
  }

  update(detail) {
    this.detail = detail;
    this.renderContext();
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.saveDraft();
    this.stopTyping();
    this.mode = mode;
    this.modes[mode].input.checked = true;
    this.textarea.value = localStorage.getItem(this.draftKey()) || "";
    this.renderContext();
    this.renderHints();
  }

  focus(mode) {
    if (!this.detail) return;
    this.setMode(mode);
    this.textarea.focus();
  }

  claimedByOther() {
    const d = this.detail;
    if (!d || !d.claimed_by || d.claimed_by.id === this.ctx.me.id) return null;
    if (d.claim_expires_at && Date.parse(d.claim_expires_at) <= Date.now()) return null;
    return d.claimed_by;
  }

  renderContext() {
    const d = this.detail;
    if (!d) return;
    const account = this.ctx.accounts.get(d.account_id);
    const reply = this.mode === "reply";
    this.el.classList.toggle("is-note", !reply);
    this.label.textContent = reply ? t("composer.reply_label") : t("composer.note_label");
    this.textarea.placeholder = reply ? t("composer.reply_placeholder") : t("composer.note_placeholder");
    if (reply && account) {
      fill(this.from, t("composer.from", { account: accountTitle(account),
        platform: PLATFORMS[account.platform] || account.platform }));
    } else if (reply) {
      fill(this.from, "");
    } else {
      fill(this.from, t("composer.note_private"));
    }
    const other = reply ? this.claimedByOther() : null;
    const closed = d.status === "closed" && reply;
    this.blocked.textContent = other ? t("composer.claimed_by_other", { name: other.name || "?" })
      : closed ? t("composer.closed") : "";
    this.blocked.hidden = !this.blocked.textContent;
    this.sendButton.textContent = reply ? t("composer.send_reply") : t("composer.add_note");
    this.renderCount();
  }

  renderCount() {
    const d = this.detail;
    if (!d) return;
    const text = this.textarea.value;
    const reply = this.mode === "reply";
    const limit = reply ? replyLimit(this.ctx.accounts.get(d.account_id)) : null;
    const length = reply ? replyLength(text) : [...text].length;
    const over = limit !== null && length > limit;
    this.counter.textContent = limit !== null ? t("composer.count_limit", { n: length, limit }) : t("composer.count", { n: length });
    this.counter.classList.toggle("over", over);
    this.counter.setAttribute("aria-live", over ? "assertive" : "off");
    this.textarea.setAttribute("aria-invalid", String(over));
    const blocked = reply && (this.claimedByOther() || d.status === "closed");
    this.sendButton.disabled = this.sending || !text.trim() || over || Boolean(blocked);
  }

  onInput() {
    this.renderCount();
    this.renderHints();
    // Kept at every keystroke (localStorage is quick): a reload or a crash a moment later loses nothing.
    this.saveDraft();
    if (this.mode === "reply" && this.detail) {
      const now = Date.now();
      if (now - this.typingSent > TYPING_RENEW_MS) {
        this.typingSent = now;
        this.ctx.live.typing(this.detail.id, true);
      }
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
    }
  }

  renderHints() {
    if (!composerHints.length || !this.detail) return;
    for (const [i, hint] of composerHints.entries()) {
      let slot = this.hints.children[i];
      if (!slot) slot = this.hints.appendChild(h("div", { class: "hint-slot" }));
      try {
        hint({ conversation: this.detail, mode: this.mode, text: this.textarea.value }, slot, this.ctx);
      } catch (e) {
        console.warn("a composer hint failed", e);
      }
    }
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (this.typingSent && this.detail) this.ctx.live.typing(this.detail.id, false);
    this.typingSent = 0;
  }

  saveDraft() {
    if (!this.detail) return;
    const text = this.textarea.value;
    if (text.trim()) localStorage.setItem(this.draftKey(), text);
    else localStorage.removeItem(this.draftKey());
  }

  onKey(e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.submit();
    }
  }

  setTypers(users) {
    this.typers = users;
    this.renderTypers();
  }

  renderTypers() {
    const names = this.typers.map((u) => u.name);
    this.warning.textContent = names.length ? t("composer.others_typing", { names: names.join(", ") }) : "";
    this.warning.hidden = !names.length;
  }

  async submit() {
    if (!this.detail || this.sendButton.disabled) return;
    const text = this.textarea.value;
    const mode = this.mode;
    const id = this.detail.id;
    this.sending = true;
    this.renderCount();
    const done = await this.pane.send(mode, text);
    this.sending = false;
    if (done === true) {
      localStorage.removeItem(this.draftKey(id, mode));
      if (this.detail && this.detail.id === id && this.mode === mode) this.textarea.value = "";
      this.stopTyping();
      this.renderHints(); // an emptied composer has nothing left to hint about
    } else if (done) {
      this.blocked.textContent = errorText(done);
      this.blocked.hidden = false;
    }
    this.renderCount();
  }
}
