// Smart assist beside a conversation: the house style checked while a reply is written (POST
// /api/conversations/{id}/replies/check), why the conversation was routed here, what it is linked to,
// replies waiting for approval or sent back, and similar questions that were answered before.
import "./messages_assist.js";
import { api, get, post } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { t } from "./i18n.js";
import { composerHints, conversationPanels } from "./pages.js";
import { errorText, statusChip, timeEl } from "./ui.js";

/** How long typing pauses before the draft is checked; each keystroke cancels the check before it. */
const CHECK_DELAY_MS = 300;

let slots = 0;

/** Put `text` into the reply composer where the cursor is (switching from a note to a reply), as if typed. */
export function insertIntoComposer(text) {
  const area = document.getElementById("composer-text");
  if (!area) return false;
  const reply = area.form && area.form.querySelector("input[name=composer-mode][value=reply]");
  if (reply && !reply.checked) reply.click();
  const empty = !area.value.trim();
  const start = empty ? 0 : area.selectionStart ?? area.value.length;
  const end = empty ? area.value.length : area.selectionEnd ?? start;
  area.focus();
  area.setRangeText(text, start, end, "end");
  // The composer counts, checks and keeps the draft on input, as it does for typing.
  area.dispatchEvent(new Event("input", { bubbles: true }));
  return true;
}

/** The view the inbox shows now, for links to other conversations. */
function conversationHref(id) {
  const view = (location.hash.match(/^#\/inbox\/([\w-]+)/) || [null, "open"])[1];
  return `#/inbox/${view}/${id}`;
}

// House style while typing

const checks = new WeakMap();

function styleHint({ conversation, mode, text }, slot) {
  let state = checks.get(slot);
  if (!state) {
    const id = `style-problems-${++slots}`;
    state = { timer: null, controller: null, key: null,
      problems: h("ul", { class: "style-problems", id, "aria-live": "polite" }),
      notes: h("ul", { class: "style-notes" }) };
    slot.classList.add("style-hint");
    fill(slot, state.problems, state.notes);
    checks.set(slot, state);
    const area = slot.closest("form") && slot.closest("form").querySelector("textarea");
    if (area) area.setAttribute("aria-describedby", `${area.getAttribute("aria-describedby") || ""} ${id}`.trim());
  }
  clearTimeout(state.timer);
  if (state.controller) state.controller.abort();
  state.controller = null;
  if (mode !== "reply" || !text.trim()) {
    showCheck(state, null);
    return;
  }
  state.timer = setTimeout(() => runCheck(state, conversation.id, text), CHECK_DELAY_MS);
}

async function runCheck(state, conversationId, text) {
  const controller = new AbortController();
  state.controller = controller;
  let result;
  try {
    result = await api("POST", `/api/conversations/${conversationId}/replies/check`, { text },
      { signal: controller.signal });
  } catch {
    return; // cancelled by newer typing, or the server is away: the send itself still checks
  }
  if (state.controller !== controller || !result) return;
  state.controller = null;
  showCheck(state, result);
}

function showCheck(state, result) {
  const problems = result ? result.problems.map((p) => [p.rule, t(`style.${p.rule}`, p)]) : [];
  const notes = [];
  if (result) {
    if (result.limit !== null && !result.problems.some((p) => p.rule === "too_long")) {
      notes.push(["length", t("style.length", result)]);
    }
    if (result.signature) {
      notes.push(["signature", t(result.signature_added ? "style.signature" : "style.signature_there",
        { signature: result.signature })]);
    }
    if (result.approval && result.approval.required) {
      notes.push(["approval", t("style.approval", { rules: result.approval.rules.map((r) => r.name).join(", ") })]);
    }
  }
  const key = JSON.stringify([problems, notes]);
  if (key === state.key) return; // unchanged: nothing to re-announce
  state.key = key;
  fill(state.problems, problems.map(([rule, text]) => h("li", { class: `style-problem rule-${rule}` }, text)));
  fill(state.notes, notes.map(([kind, text]) => h("li", { class: `style-note note-${kind}` }, text)));
}

composerHints.push(styleHint);

// About this conversation: approval, routing, links

const abouts = new WeakMap();

function aboutPanel(d, slot, ctx) {
  let state = abouts.get(slot);
  if (!state) {
    state = { key: null, editors: new Map() };
    abouts.set(slot, state);
    slot.classList.add("assist-about");
  }
  const me = ctx.me;
  const reviewsOf = (replyId) => (d.reviews || []).filter((r) => r.reply_id === replyId);
  const replies = d.messages.filter((m) => m.direction === "out" && m.reply
    && (m.state === "draft" || (m.state === "awaiting_approval" && m.author && m.author.id === me.id)));
  const key = JSON.stringify([d.id, replies.map((m) => [m.id, m.state, m.text]), d.reviews, d.routing, d.links,
    d.cluster]);
  if (key === state.key) return;
  state.key = key;

  const items = [];
  for (const m of replies) {
    const reviews = reviewsOf(m.reply.id);
    if (m.state === "awaiting_approval") {
      const submitted = reviews.filter((r) => r.decision === "submitted").pop();
      const rules = submitted && submitted.rules ? submitted.rules.map((r) => r.name).join(", ") : "";
      items.push(h("li", { class: "assist-waiting" }, t("assist.waiting", { rules })));
    } else {
      const back = reviews.filter((r) => r.decision === "sent_back").pop();
      const mine = m.author && m.author.id === me.id;
      items.push(h("li", { class: "assist-sent-back" },
        h("p", { class: "assist-comment-by" }, t(mine ? "assist.sent_back" : "assist.sent_back_other",
          { name: (back && back.by && back.by.name) || t("conversation.colleague") })),
        h("blockquote", { class: "assist-comment" }, back ? back.comment : ""),
        mine ? resubmitEditor(state, m) : null));
    }
  }
  const route = d.routing;
  if (route) {
    items.push(h("li", { class: "assist-route" },
      route.department ? t("assist.routed", { department: route.department.name || "?", rule: route.rule_name })
        : route.rule_name,
      route.suggested_expert ? [" ", t("assist.routed_expert", { name: route.suggested_expert.name || "?" })] : null,
      route.reason ? [" ", h("span", { class: "assist-reason" }, t("assist.reason"), " ", route.reason)] : null));
  }
  if (d.cluster) {
    items.push(h("li", { class: "assist-cluster" }, d.cluster.topic
      ? t("assist.surge", { n: d.cluster.size, topic: d.cluster.topic }) : t("assist.surge_plain", { n: d.cluster.size })));
  }
  for (const link of (d.links || []).slice(0, 10)) {
    const kind = t(`link.${link.kind}`);
    items.push(h("li", { class: "assist-link" },
      t(link.first ? "assist.first_of" : "assist.repeated_by", { id: link.conversation_id, kind }), " ",
      h("a", { href: conversationHref(link.conversation_id) }, `#${link.conversation_id}`), " ",
      statusChip(link.status)));
  }
  for (const id of state.editors.keys()) {
    if (!replies.some((m) => m.reply.id === id && m.state === "draft")) state.editors.delete(id);
  }
  if (!items.length) {
    slot.replaceChildren();
    return;
  }
  fill(slot, h("h3", { class: "panel-title" }, t("assist.title")), h("ul", { class: "assist-list" }, items));
}

function resubmitEditor(state, m) {
  const known = state.editors.get(m.reply.id);
  if (known) return known;
  const id = `resubmit-${m.reply.id}`;
  const area = h("textarea", { id, rows: "3", class: "resubmit-text", value: m.text || "" });
  const error = h("p", { class: "form-error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" }, t("assist.resubmit"));
  const form = h("form", { class: "resubmit", onsubmit: async (e) => {
    e.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      await post(`/api/replies/${m.reply.id}/resubmit`, { text: area.value });
      announce(t("assist.resubmitted"));
    } catch (err) {
      error.textContent = errorText(err);
    }
    button.disabled = false;
  } }, h("label", { for: id }, t("assist.resubmit_label")), area, error, h("div", { class: "form-buttons" }, button));
  state.editors.set(m.reply.id, form);
  return form;
}

conversationPanels.push(aboutPanel);

// Similar questions that were answered, from every department

const similars = new WeakMap();

function similarPanel(d, slot) {
  let state = similars.get(slot);
  if (state && state.id === d.id) return; // asked once per conversation shown
  state = { id: d.id };
  similars.set(slot, state);
  slot.classList.add("assist-similar");
  const headingId = `similar-title-${++slots}`;
  slot.setAttribute("aria-labelledby", headingId);
  const heading = h("h3", { class: "panel-title", id: headingId }, t("similar.title"));
  fill(slot, heading, h("p", { class: "hint" }, t("similar.loading")));
  get(`/api/conversations/${d.id}/similar`).then((answer) => {
    if (similars.get(slot) !== state) return;
    if (!answer.items.length) {
      fill(slot, heading, h("p", { class: "hint" }, t("similar.none")));
      return;
    }
    fill(slot, heading, h("ol", { class: "similar-list" }, answer.items.map((item) => similarItem(item))));
  }).catch((e) => {
    if (similars.get(slot) === state) fill(slot, heading, h("p", { class: "hint" }, errorText(e)));
  });
}

function similarItem(item) {
  const answer = item.answer;
  return h("li", { class: "similar" },
    h("p", { class: "similar-question" },
      h("a", { href: conversationHref(item.conversation_id), class: "similar-link" },
        t("similar.open", { id: item.conversation_id })), " ",
      h("span", { class: "similar-text" }, item.question || "")),
    h("p", { class: "similar-meta" }, t("similar.asked", { account: item.account.name,
      department: item.department.name }), " ", statusChip(item.status)),
    answer ? h("div", { class: "similar-answer" },
      h("p", { class: "similar-meta" }, t("similar.answer_by", { name: (answer.by && answer.by.name) || "?" }), " ",
        timeEl(answer.sent_at)),
      h("p", { class: "msg-text" }, answer.text),
      h("button", { type: "button", class: "link-button", onclick: () => {
        if (insertIntoComposer(answer.text)) announce(t("similar.used"));
      } }, t("similar.use"))) : null);
}

conversationPanels.push(similarPanel);
