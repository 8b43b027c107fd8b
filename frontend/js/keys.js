// The keyboard: the queue, claim, reply, escalate and close without a mouse; "?" shows them all.
import { typingIn } from "./dom.js";
import { t } from "./i18n.js";

let appRef = null;

export function shortcuts() {
  return [
    [["j", "↓"], t("help.next")],
    [["k", "↑"], t("help.previous")],
    [["Enter", "o"], t("help.open")],
    [["c"], t("help.claim")],
    [["u"], t("help.release")],
    [["r"], t("help.reply")],
    [["n"], t("help.note")],
    [["e"], t("help.escalate")],
    [["x"], t("help.close")],
    [["Shift+R"], t("help.reopen")],
    [["Ctrl+Enter"], t("help.send")],
    [["/"], t("help.search")],
    [["1 … 9"], t("help.views")],
    [["Esc"], t("help.back")],
    [["?"], t("help.help")],
  ];
}

export async function showHelp() {
  const { helpDialog } = await import("./dialogs.js");
  return helpDialog(shortcuts());
}

export function installKeys(app) {
  appRef = app;
  document.addEventListener("keydown", onKey);
}

async function onKey(e) {
  const app = appRef;
  if (e.defaultPrevented || document.querySelector("dialog[open]")) return;
  const inbox = app.ctx && app.page === null ? app.inbox : null;
  if (e.key === "Escape" && typingIn(e.target)) {
    e.target.blur();
    inbox?.focusList();
    return;
  }
  if (typingIn(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "?") {
    e.preventDefault();
    showHelp();
    return;
  }
  if (!inbox) return;
  const onButton = e.target instanceof Element && e.target.closest("button, a, [role=listbox]");
  const id = inbox.currentId();
  // With the conversation already on screen, act at once: typing right after "r" lands in the composer.
  const shown = id !== null && inbox.openId === id && inbox.pane.detail !== null && inbox.pane.detail.id === id;
  if ((e.key === "r" || e.key === "n") && shown) {
    e.preventDefault();
    inbox.pane.composer.focus(e.key === "r" ? "reply" : "note");
    return;
  }
  const open = async () => {
    if (id === null) return false;
    if (inbox.openId !== id) {
      history.replaceState(null, "", `#/inbox/${inbox.viewKey}/${id}`);
      await inbox.show(inbox.viewKey, id);
    }
    await inbox.pane.ready;
    return inbox.pane.detail !== null && inbox.pane.detail.id === id;
  };
  const key = e.key;
  if (key === "j" || (key === "ArrowDown" && !onButton)) {
    e.preventDefault();
    await inbox.move(1);
  } else if (key === "k" || (key === "ArrowUp" && !onButton)) {
    e.preventDefault();
    await inbox.move(-1);
  } else if (key === "o" || (key === "Enter" && !onButton)) {
    e.preventDefault();
    inbox.openSelected();
  } else if (key === "Escape") {
    if (inbox.openId !== null) {
      e.preventDefault();
      inbox.closePane();
    }
  } else if (key === "c") {
    e.preventDefault();
    if (id !== null && await open()) await inbox.claim(id);
  } else if (key === "u") {
    e.preventDefault();
    if (id !== null && await open()) await inbox.release(id);
  } else if (key === "R") {
    e.preventDefault();
    if (id !== null && await open()) await inbox.reopen(id);
  } else if (key === "r" || key === "n") {
    e.preventDefault();
    if (await open()) inbox.pane.composer.focus(key === "r" ? "reply" : "note");
  } else if (key === "e") {
    e.preventDefault();
    if (await open()) await inbox.pane.escalate();
  } else if (key === "x") {
    e.preventDefault();
    if (await open()) await inbox.pane.close();
  } else if (key === "/") {
    e.preventDefault();
    inbox.search.focus();
  } else if (/^[1-9]$/.test(key)) {
    const view = inbox.views[Number(key) - 1];
    if (view) {
      e.preventDefault();
      app.ctx.navigate(`#/inbox/${view.key}`);
    }
  }
}
