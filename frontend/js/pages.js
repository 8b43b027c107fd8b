// Pages that other parts of Webcare add to the app (the dashboard, house style, ...). Each is a module that
// pushes itself here and is imported from extensions.js (and preloaded in index.html):
//
//   import { pages } from "./pages.js";
//   pages.push({ path: "dashboard", title: () => t("nav.dashboard"), roles: ["coordinator", "admin"],
//                render: async (container, ctx) => { ... } });
//
// `render` fills `container` (with dom.js's h(), never innerHTML) and is called again when the language
// changes. `ctx` has `me`, `users`, `departments`, `accounts` (Maps by id), `live` (the live stream:
// addEventListener("event", ...)) and `navigate(hash)`.
export const pages = [];

// Panels beside a conversation (assist: similar answered questions, saved replies). Each is
// `(conversation, slot, ctx) => void`: called with the conversation (as GET /api/conversations/{id} answers
// it) whenever it is shown or changes, with its own `slot` element to fill.
export const conversationPanels = [];

// Hints under the composer (house style: signature, banned phrases, length). Each is
// `({conversation, mode, text}, slot, ctx) => void`, called as the person writes; `mode` is "reply" or "note".
export const composerHints = [];
