// The live stream (GET /api/live?after=SEQ, see webcare/api/live.py): events in seq order, presence,
// and a connection that mends itself. After a drop it reconnects with the last seq it saw, so nothing
// is missed; what it says about that is quiet, unless the connection stays away for longer.

const LOST_AFTER_MS = 4000;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];

export class Live extends EventTarget {
  constructor() {
    super();
    /** The last seq received; null until the first event. */
    this.lastSeq = null;
    this.state = "connecting";
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.everOpen = false;
    this.retryTimer = null;
    this.lostTimer = null;
    // What this tab tells the server, sent again after every reconnect.
    this.viewing = null;
    this.watching = [];
    this.online = () => { if (this.state !== "live") this.reconnectNow(); };
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.online);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.online);
    clearTimeout(this.retryTimer);
    clearTimeout(this.lostTimer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const after = this.lastSeq === null ? "" : `?after=${this.lastSeq}`;
    const socket = new WebSocket(`${scheme}//${location.host}/api/live${after}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      const resumed = this.everOpen;
      this.everOpen = true;
      this.attempt = 0;
      clearTimeout(this.lostTimer);
      this.setState("live");
      this.send({ type: "presence.viewing", conversation_id: this.viewing });
      if (this.watching.length) this.send({ type: "presence.watch", conversation_ids: this.watching });
      // With a seq the server replays what was missed; without one, the page has to look again itself.
      this.dispatchEvent(new CustomEvent("open", { detail: { after: this.lastSeq, resumed } }));
    });
    socket.addEventListener("message", (e) => {
      if (socket !== this.socket) return;
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      if (typeof frame.seq === "number") {
        if (this.lastSeq !== null && frame.seq <= this.lastSeq) return;
        this.lastSeq = frame.seq;
        this.dispatchEvent(new CustomEvent("event", { detail: frame }));
      } else if (frame.type === "presence.viewing" || frame.type === "presence.typing") {
        this.dispatchEvent(new CustomEvent("presence", { detail: frame }));
      } else if (frame.type === "error") {
        console.warn("live:", frame.error);
      }
    });
    socket.addEventListener("close", (e) => {
      if (socket !== this.socket || this.stopped) return;
      this.socket = null;
      if (e.code === 4401 || e.code === 1008) {
        this.dispatchEvent(new CustomEvent("unauthorized"));
      }
      // The server ended the stream because the login no longer holds or the role changed.
      if (e.code === 4001) this.dispatchEvent(new CustomEvent("revoked"));
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    this.setState(this.state === "lost" ? "lost" : "reconnecting");
    if (!this.lostTimer || this.state !== "lost") {
      clearTimeout(this.lostTimer);
      this.lostTimer = setTimeout(() => this.setState("lost"), LOST_AFTER_MS);
    }
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
    this.dispatchEvent(new CustomEvent("retrying", { detail: { attempt: this.attempt } }));
  }

  reconnectNow() {
    if (this.stopped || (this.socket && this.socket.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  setState(state) {
    if (state === this.state) return;
    const was = this.state;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, was } }));
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  view(conversationId) {
    if (this.viewing === conversationId) return;
    this.viewing = conversationId;
    this.send({ type: "presence.viewing", conversation_id: conversationId });
  }

  typing(conversationId, typing) {
    this.send({ type: "presence.typing", conversation_id: conversationId, typing });
  }

  watch(conversationIds) {
    const ids = conversationIds.slice(0, 100);
    if (ids.length === this.watching.length && ids.every((id, i) => id === this.watching[i])) return;
    this.watching = ids;
    this.send({ type: "presence.watch", conversation_ids: ids });
  }
}
