// Building the page. Text from platforms and people goes in as text nodes only: there is no way to pass
// markup through h(), and nothing in this app assigns innerHTML.

/**
 * h("button", {class: "primary", onclick: fn, "aria-label": "Claim"}, "Claim", child, [more])
 * Attributes: `class`, `on<event>` (a function), `dataset` (an object), `hidden`/`disabled`/... (booleans),
 * everything else through setAttribute. Children: strings and numbers become text nodes; null, undefined
 * and false are skipped; arrays are flattened.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (key === "dataset") {
        Object.assign(el.dataset, value);
      } else if (key === "value" || key === "checked" || key === "selected") {
        el[key] = value;
      } else if (value === true) {
        el.setAttribute(key, "");
      } else {
        el.setAttribute(key, String(value));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

/** Replace everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Whether a key press belongs to a field the person is typing in. */
export function typingIn(target) {
  if (!(target instanceof Element)) return false;
  return target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']") !== null;
}

let announcer = null;

/** Say something to screen readers, politely, and show it briefly unless `visual` is false. */
export function announce(text, { tone = "info", visual = true } = {}) {
  if (!announcer) announcer = document.getElementById("announcer");
  const toasts = document.getElementById("toasts");
  if (announcer) {
    announcer.textContent = "";
    // A new text node on the next frame makes screen readers speak the same words twice in a row too.
    requestAnimationFrame(() => { announcer.textContent = text; });
  }
  if (toasts && visual) {
    const toast = h("div", { class: `toast toast-${tone}` }, text);
    toasts.appendChild(toast);
    setTimeout(() => toast.remove(), tone === "error" ? 8000 : 3500);
  }
}
