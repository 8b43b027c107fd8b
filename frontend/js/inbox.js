// The inbox: views on the left, the queue in the middle, the conversation on the right; all kept current
// from the live stream. The queue is paged by the API's cursor: only what has been scrolled to is rendered.
import { ApiError, get, post, query } from "./api.js";
import { ConversationPane } from "./conversation.js";
import { announce, fill, h } from "./dom.js";
import { t, tn } from "./i18n.js";
import { accountLabel, errorText, platformBadge, statusChip, timeEl } from "./ui.js";

const PAGE = 50;
const ACTIVE = ["open", "claimed", "escalated"];
/** Presence is followed for this many rows around the one selected. */
const WATCH = 100;

/** Newest activity first, as the API pages: last_message_at, then id, both descending. */
function before(a, b) {
  if (a.last_message_at !== b.last_message_at) return a.last_message_at > b.last_message_at;
  return a.id > b.id;
}

export class Inbox {
  constructor(ctx, views = null) {
    this.ctx = ctx;
    this.views = views ? views.items : [];
    /** The first page of one view, which came with the views: used once, instead of asking again. */
    this.firstPage = views && views.first ? views.first : null;
    this.viewKey = "open";
    this.q = "";
    this.items = [];
    this.byId = new Map();
    this.rows = new Map();
    this.nextCursor = null;
    this.loaded = false;
    this.loadingMore = null;
    this.generation = 0;
    this.selectedId = null;
    this.openId = null;
    this.presence = new Map();
    this.pending = new Set();
    this.flushTimer = null;
    this.viewsTimer = null;
    this.viewsInFlight = null;
    this.el = this.build();
    this.pane = new ConversationPane(ctx, this);
    this.paneHolder.appendChild(this.pane.el);
    this.renderViews();

    const live = ctx.live;
    live.addEventListener("event", (e) => this.onEvent(e.detail));
    live.addEventListener("presence", (e) => this.onPresence(e.detail));
    live.addEventListener("open", (e) => {
      // Without a seq to resume from, what happened while away is unknown: look again.
      if (e.detail.after === null && this.loaded) this.reload();
    });
  }

  // Building

  build() {
    this.viewList = h("ul", { class: "view-list" });
    this.viewSelect = h("select", { class: "view-select", "aria-label": t("inbox.view"),
      onchange: () => this.ctx.navigate(`#/inbox/${this.viewSelect.value}`) });
    this.queueTitle = h("h2", { id: "queue-title", class: "queue-title" });
    this.search = h("input", { type: "search", class: "search", placeholder: t("queue.search"),
      "aria-label": t("queue.search"), onkeydown: (e) => { if (e.key === "Enter") this.setQuery(this.search.value); },
      onsearch: () => this.setQuery(this.search.value) });
    this.list = h("ul", { role: "listbox", class: "queue-list", tabindex: "0", "aria-labelledby": "queue-title",
      onclick: (e) => this.onListClick(e), onkeydown: (e) => this.onListKey(e) });
    this.more = h("button", { type: "button", class: "more", onclick: () => this.loadMore() }, t("queue.more"));
    this.status = h("p", { class: "queue-status", role: "status" });
    this.sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
    this.queueEl = h("section", { class: "queue", "aria-labelledby": "queue-title" },
      h("div", { class: "queue-head" }, this.queueTitle, this.viewSelect, this.search),
      h("div", { class: "queue-scroll" }, this.list, this.status, this.more, this.sentinel));
    this.paneHolder = h("div", { class: "pane-holder" });
    const el = h("div", { class: "inbox" },
      h("nav", { class: "views", "aria-label": t("inbox.views") }, this.viewList),
      this.queueEl, this.paneHolder);
    // Scrolling near the end of what is loaded fetches the next page.
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    }, { root: null, rootMargin: "400px" }).observe(this.sentinel);
    return el;
  }

  relabel() {
    this.viewSelect.setAttribute("aria-label", t("inbox.view"));
    this.search.placeholder = t("queue.search");
    this.search.setAttribute("aria-label", t("queue.search"));
    this.more.textContent = t("queue.more");
    this.el.querySelector(".views").setAttribute("aria-label", t("inbox.views"));
    this.renderViews();
    this.renderList();
    this.pane.relabel();
  }

  // Showing a route: #/inbox/<view>[/<conversation id>]

  async show(viewKey, conversationId) {
    const first = !this.loaded;
    if (first && !this.views.length) await this.refreshViews();
    const known = this.views.some((v) => v.key === viewKey);
    if (!known) viewKey = "open";
    if (viewKey !== this.viewKey || first) {
      this.viewKey = viewKey;
      this.renderViews();
      await this.load();
    }
    this.el.classList.toggle("has-open", conversationId !== null);
    if (conversationId !== this.openId) {
      this.openId = conversationId;
      if (conversationId !== null) this.select(conversationId, { scroll: true });
      this.renderSelection();
      await this.pane.show(conversationId);
    }
  }

  view() {
    return this.views.find((v) => v.key === this.viewKey) || this.views[0];
  }

  viewName(v) {
    if (v.account_id) return accountLabel(this.ctx.accounts.get(v.account_id)) || t("view.account");
    return t(`view.${v.key}`);
  }

  // Views and their counts

  async refreshViews() {
    if (this.viewsInFlight) return this.viewsInFlight;
    this.viewsInFlight = (async () => {
      try {
        this.views = (await get("/api/views")).items;
        this.renderViews();
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 401)) console.warn("views", e);
      } finally {
        this.viewsInFlight = null;
      }
    })();
    return this.viewsInFlight;
  }

  scheduleViews() {
    if (this.viewsTimer) return;
    this.viewsTimer = setTimeout(() => {
      this.viewsTimer = null;
      this.refreshViews();
    }, 400);
  }

  renderViews() {
    const general = this.views.filter((v) => !v.account_id);
    const accounts = this.views.filter((v) => v.account_id);
    const item = (v) => {
      const current = v.key === this.viewKey;
      const account = v.account_id ? this.ctx.accounts.get(v.account_id) : null;
      if (v.account_id && !account) this.missingAccount(v.account_id);
      return h("li", null, h("a", {
        href: `#/inbox/${v.key}`, class: "view-link", "aria-current": current ? "page" : null,
        "aria-label": v.count === null ? this.viewName(v) : `${this.viewName(v)}, ${tn("view.count", v.count)}`,
        dataset: { view: v.key },
      }, account ? platformBadge(account.platform) : null, h("span", { class: "view-name" }, this.viewName(v)),
      v.count === null ? null : h("span", { class: "count", "aria-hidden": "true" }, v.count)));
    };
    fill(this.viewList, general.map(item),
      accounts.length ? h("li", { class: "view-group", role: "presentation" }, t("view.accounts")) : null,
      accounts.map(item));
    fill(this.viewSelect, this.views.map((v) => h("option", { value: v.key, selected: v.key === this.viewKey },
      v.count === null ? this.viewName(v) : `${this.viewName(v)} (${v.count})`)));
    const current = this.view();
    this.queueTitle.textContent = current ? this.viewName(current) : "";
  }

  // The queue

  async load() {
    const generation = ++this.generation;
    const view = this.view();
    if (!view) return;
    this.status.textContent = t("queue.loading");
    let page = this.firstPage && this.firstPage.key === view.key && !this.q ? this.firstPage : null;
    this.firstPage = null;
    try {
      page ??= await get(`/api/conversations${query({ ...view.filter, q: this.q, limit: PAGE })}`);
    } catch (e) {
      if (generation === this.generation) this.status.textContent = errorText(e);
      return;
    }
    if (generation !== this.generation) return;
    this.items = page.items;
    this.byId = new Map(this.items.map((i) => [i.id, i]));
    this.nextCursor = page.next_cursor;
    this.loaded = true;
    if (!this.byId.has(this.selectedId)) this.selectedId = this.items.length ? this.items[0].id : null;
    this.renderList();
  }

  async reload() {
    await Promise.all([this.refreshViews(), this.load()]);
    if (this.openId !== null) this.queueRefresh(this.openId);
  }

  loadMore() {
    if (!this.nextCursor || this.loadingMore) return this.loadingMore;
    const generation = this.generation;
    const view = this.view();
    this.loadingMore = (async () => {
      try {
        const page = await get(`/api/conversations${query({ ...view.filter, q: this.q, limit: PAGE,
          cursor: this.nextCursor })}`);
        if (generation !== this.generation) return;
        const fresh = page.items.filter((i) => !this.byId.has(i.id));
        for (const item of fresh) this.byId.set(item.id, item);
        this.items.push(...fresh);
        this.nextCursor = page.next_cursor;
        const frag = document.createDocumentFragment();
        for (const item of fresh) frag.appendChild(this.rowEl(item));
        this.list.appendChild(frag);
        this.renderFooter();
        this.watch();
      } catch (e) {
        announce(errorText(e), { tone: "error" });
      } finally {
        this.loadingMore = null;
      }
    })();
    return this.loadingMore;
  }

  setQuery(q) {
    q = q.trim();
    if (q === this.q) return;
    this.q = q;
    this.load();
  }

  renderList() {
    this.rows.clear();
    const frag = document.createDocumentFragment();
    for (const item of this.items) frag.appendChild(this.rowEl(item));
    this.list.replaceChildren(frag);
    this.renderSelection();
    this.renderFooter();
    this.watch();
  }

  renderFooter() {
    this.more.hidden = !this.nextCursor;
    if (!this.items.length) this.status.textContent = this.q ? t("queue.none_found") : t("queue.empty");
    else this.status.textContent = this.nextCursor ? "" : t("queue.end");
  }

  /** An account this page has not heard of yet (added since it loaded): look again, then show it properly. */
  missingAccount(id) {
    if (this.refreshingAccounts || this.ctx.accounts.has(id)) return;
    this.refreshingAccounts = this.ctx.refreshReference()
      .then(() => { this.renderViews(); this.renderList(); })
      .catch(() => null)
      .finally(() => setTimeout(() => { this.refreshingAccounts = null; }, 5000));
  }

  rowEl(item) {
    const { me, accounts } = this.ctx;
    const account = accounts.get(item.account_id);
    if (!account) this.missingAccount(item.account_id);
    const claimed = item.claimed_by;
    const mine = claimed && claimed.id === me.id;
    const seen = this.presence.get(item.id) || {};
    const viewing = (seen["presence.viewing"] || []).map((u) => u.name);
    const typing = (seen["presence.typing"] || []).map((u) => u.name);
    const author = item.author || {};
    const row = h("li", {
      role: "option", id: `q-${item.id}`, class: `row status-${item.status}${mine ? " is-mine" : ""}`,
      "aria-selected": String(item.id === this.selectedId), dataset: { id: item.id },
    },
    h("div", { class: "row-top" },
      account ? platformBadge(account.platform) : null,
      h("span", { class: "row-account" }, accountLabel(account)),
      item.waiting_since
        ? timeEl(item.waiting_since, { prefix: "queue.waiting", className: "row-time waiting" })
        : timeEl(item.last_message_at, { className: "row-time" })),
    h("div", { class: "row-author" },
      h("span", { class: "author-name" }, author.name || author.handle || t("conversation.unknown_author")),
      author.handle && author.name ? h("span", { class: "handle" }, `@${author.handle}`) : null),
    h("div", { class: "row-preview" }, item.subject_preview || ""),
    h("div", { class: "row-tags" },
      statusChip(item.status, Boolean(claimed)),
      claimed ? h("span", { class: `tag ${mine ? "tag-mine" : "tag-claimed"}` },
        mine ? t("queue.claimed_by_you") : t("queue.claimed_by", { name: claimed.name || "?" })) : null,
      item.assignee && item.status === "escalated"
        ? h("span", { class: "tag tag-assignee" }, t("queue.escalated_to", { name: item.assignee.name || "?" })) : null,
      typing.length ? h("span", { class: "tag tag-typing" }, t("queue.typing", { names: typing.join(", ") }))
        : viewing.length ? h("span", { class: "tag tag-viewing" }, t("queue.viewing", { names: viewing.join(", ") }))
          : null));
    this.rows.set(item.id, row);
    return row;
  }

  renderRow(id) {
    const item = this.byId.get(id);
    const old = this.rows.get(id);
    if (!item || !old) return;
    old.replaceWith(this.rowEl(item));
  }

  /** Put a changed conversation where it belongs in this view: in place, moved, added or taken out. */
  upsert(conversation) {
    const { messages: _m, links: _l, ...item } = conversation;
    const existing = this.byId.get(item.id);
    const belongs = this.matches(item, Boolean(existing));
    if (existing) {
      const index = this.items.indexOf(existing);
      this.items.splice(index, 1);
      const row = this.rows.get(item.id);
      this.rows.delete(item.id);
      this.byId.delete(item.id);
      if (!belongs) {
        if (this.selectedId === item.id && this.openId !== item.id) {
          const next = this.items[index] || this.items[index - 1];
          this.selectedId = next ? next.id : null;
        }
        row?.remove();
        this.renderSelection();
        this.renderFooter();
        this.watch();
        return;
      }
      this.insert(item, row);
    } else if (belongs && this.fitsLoaded(item)) {
      this.insert(item, null);
      this.watch();
    }
    this.renderFooter();
  }

  insert(item, oldRow) {
    let index = this.items.findIndex((other) => before(item, other));
    if (index < 0) index = this.items.length;
    this.items.splice(index, 0, item);
    this.byId.set(item.id, item);
    const row = this.rowEl(item);
    const next = this.items[index + 1];
    const anchor = next ? this.rows.get(next.id) : null;
    oldRow?.remove();
    if (anchor) this.list.insertBefore(row, anchor);
    else this.list.appendChild(row);
    if (!oldRow) {
      row.classList.add("is-new");
      setTimeout(() => row.classList.remove("is-new"), 2000);
    }
    if (this.selectedId === null) this.selectedId = item.id;
    this.renderSelection();
  }

  /** Whether a conversation shows in the current view: the view's filter, as the API applies it. */
  matches(item, known) {
    const view = this.view();
    if (!view) return false;
    const f = view.filter;
    const { me, accounts } = this.ctx;
    if (f.status && !f.status.split(",").includes(item.status)) return false;
    if (f.account_id && item.account_id !== f.account_id) return false;
    if (f.claimed_by === "me" && !(item.claimed_by && item.claimed_by.id === me.id)) return false;
    const a = item.assignee;
    if (f.assignee === "me" && !(a && ((a.type === "user" && a.id === me.id)
      || (a.type === "department" && a.id === me.department_id)))) return false;
    if (f.department_id) {
      const account = accounts.get(item.account_id);
      if (!((a && a.type === "department" && a.id === f.department_id)
        || (account && account.department_id === f.department_id))) return false;
    }
    if (this.q && !known) {
      // The search runs on the server over every message; a newcomer is let in only on what we can see.
      const needle = this.q.toLowerCase();
      const author = item.author || {};
      return [item.subject_preview, author.name, author.handle].some((s) => s && s.toLowerCase().includes(needle));
    }
    return true;
  }

  /** A conversation that sorts after the last loaded one arrives with the next page instead. */
  fitsLoaded(item) {
    if (!this.nextCursor || !this.items.length) return true;
    return before(item, this.items[this.items.length - 1]);
  }

  // Selection and the keyboard

  select(id, { scroll = false } = {}) {
    this.selectedId = id;
    this.renderSelection();
    const row = this.rows.get(id);
    if (row && scroll) row.scrollIntoView({ block: "nearest" });
    this.watch();
  }

  renderSelection() {
    for (const [id, row] of this.rows) {
      row.setAttribute("aria-selected", String(id === this.selectedId));
      row.classList.toggle("is-open", id === this.openId);
    }
    if (this.selectedId !== null && this.rows.has(this.selectedId)) {
      this.list.setAttribute("aria-activedescendant", `q-${this.selectedId}`);
    } else {
      this.list.removeAttribute("aria-activedescendant");
    }
  }

  async move(delta) {
    if (!this.items.length) return;
    let index = this.items.findIndex((i) => i.id === this.selectedId);
    index = index < 0 ? 0 : index + delta;
    if (index >= this.items.length && this.nextCursor) {
      await this.loadMore();
    }
    index = Math.max(0, Math.min(this.items.length - 1, index));
    this.select(this.items[index].id, { scroll: true });
  }

  openSelected() {
    if (this.selectedId !== null) this.open(this.selectedId);
  }

  open(id) {
    this.ctx.navigate(`#/inbox/${this.viewKey}/${id}`);
  }

  closePane() {
    this.ctx.navigate(`#/inbox/${this.viewKey}`);
    this.focusList();
  }

  focusList() {
    this.list.focus();
  }

  onListClick(e) {
    const row = e.target.closest("[role=option]");
    if (!row) return;
    const id = Number(row.dataset.id);
    this.select(id);
    this.open(id);
  }

  onListKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "ArrowDown") { e.preventDefault(); this.move(1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); this.move(-1); }
    else if (e.key === "Home") { e.preventDefault(); if (this.items.length) this.select(this.items[0].id, { scroll: true }); }
    else if (e.key === "End") { e.preventDefault(); this.move(this.items.length); }
    else if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.openSelected(); }
  }

  /** The conversation a shortcut acts on: the one open, else the one selected in the queue. */
  currentId() {
    return this.openId ?? this.selectedId;
  }

  // Live

  onEvent(event) {
    const id = event.conversation_id;
    if (id === null || id === undefined) return;
    const item = this.byId.get(id);
    // Who has it shows at once; the full picture follows from the server a moment later.
    if (item && event.type === "conversation.claimed") {
      const by = event.data && event.data.claimed_by;
      item.claimed_by = { id: by, name: this.ctx.userName(by) };
      if (item.status === "open") item.status = "claimed";
      this.renderRow(id);
    } else if (item && event.type === "conversation.released") {
      item.claimed_by = null;
      if (item.status === "claimed") item.status = "open";
      this.renderRow(id);
    }
    if (id === this.openId) this.pane.onEvent(event);
    this.queueRefresh(id);
    this.scheduleViews();
  }

  queueRefresh(id) {
    this.pending.add(id);
    if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), 30);
  }

  async flush() {
    this.flushTimer = null;
    const ids = [...this.pending];
    this.pending.clear();
    await Promise.all(ids.map(async (id) => {
      let conversation;
      try {
        conversation = await get(`/api/conversations/${id}`);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) this.forget(id);
        return;
      }
      this.take(conversation);
    }));
  }

  /** A fresh copy of a conversation (with its messages): into the queue, and the pane if it is open. */
  take(conversation) {
    this.upsert(conversation);
    if (conversation.id === this.openId) this.pane.update(conversation);
  }

  forget(id) {
    const item = this.byId.get(id);
    if (!item) return;
    this.items.splice(this.items.indexOf(item), 1);
    this.byId.delete(id);
    this.rows.get(id)?.remove();
    this.rows.delete(id);
    this.renderFooter();
  }

  onPresence(frame) {
    const id = frame.conversation_id;
    const seen = this.presence.get(id) || {};
    seen[frame.type] = frame.users;
    this.presence.set(id, seen);
    if (this.byId.has(id)) this.renderRow(id);
    if (id === this.openId) this.pane.onPresence(frame);
  }

  /** Follow who looks at the rows around the selection. */
  watch() {
    if (!this.items.length) {
      this.ctx.live.watch([]);
      return;
    }
    const index = Math.max(0, this.items.findIndex((i) => i.id === this.selectedId));
    const start = Math.max(0, Math.min(index - 20, this.items.length - WATCH));
    this.ctx.live.watch(this.items.slice(start, start + WATCH).map((i) => i.id));
  }

  // Actions: each answers the changed conversation, which goes straight into the queue and the pane.

  async act(id, verb, body, done) {
    try {
      const answer = await post(`/api/conversations/${id}/${verb}`, body);
      if (answer && answer.conversation) this.upsert(answer.conversation);
      this.queueRefresh(id);
      this.scheduleViews();
      if (done) announce(done);
      return answer;
    } catch (e) {
      announce(errorText(e), { tone: "error" });
      if (e instanceof ApiError && e.status === 409) this.queueRefresh(id);
      return null;
    }
  }

  claim(id) {
    return this.act(id, "claim", undefined, t("done.claimed"));
  }

  release(id) {
    return this.act(id, "release", undefined, t("done.released"));
  }

  reopen(id) {
    return this.act(id, "reopen", undefined, t("done.reopened"));
  }
}
