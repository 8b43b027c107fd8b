// What other parts of Webcare add to the app: one import per module, each registering itself in pages.js
// (a page in the menu, a panel beside a conversation, hints under the composer). main.js imports this
// first, so all of it is in place before anything is shown.
import "./assist.js";
import "./saved_replies.js";
import "./approvals.js";
import "./dashboard.js";
import "./routing_rules.js";
import "./house_style.js";
import "./surges.js";
