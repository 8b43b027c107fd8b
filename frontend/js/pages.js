// Pages that other parts of Webcare add to the app (the dashboard, house style, ...). Each is a module that
// pushes itself here and is imported in index.html's list below main.js:
//
//   import { pages } from "./pages.js";
//   pages.push({ path: "dashboard", title: () => t("nav.dashboard"), roles: ["coordinator", "admin"],
//                render: async (container, ctx) => { ... } });
//
// `render` fills `container` (with dom.js's h(), never innerHTML) and is called again when the language
// changes. `ctx` has `me`, `users`, `departments`, `accounts` (Maps by id), `live` (the live stream:
// addEventListener("event", ...)) and `navigate(hash)`.
export const pages = [];

// Hooks the conversation view calls for extra panels (assist: similar questions, saved replies, house
// style hints). Each is `(conversation, slot, ctx) => void`, where `slot` is an element to fill.
export const conversationPanels = [];
