// Modal dialogs on the native <dialog>: it keeps focus inside, closes on Escape and gives focus back.
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { field, options } from "./ui.js";

/** Show a dialog built by `build(finish)`; resolves with what `finish` was given, or null when cancelled. */
export function modal(title, build) {
  return new Promise((resolve) => {
    let result = null;
    const heading = h("h2", { id: "dialog-title" }, title);
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": "dialog-title" });
    const finish = (value) => {
      result = value;
      dialog.close();
    };
    dialog.append(heading, build(finish, () => finish(null)));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    const first = dialog.querySelector("[autofocus]") || dialog.querySelector("input, select, textarea, button");
    if (first) first.focus();
  });
}

function buttons(cancel, submitLabel) {
  return h("div", { class: "dialog-buttons" },
    h("button", { type: "button", onclick: cancel }, t("dialog.cancel")),
    h("button", { type: "submit", class: "primary" }, submitLabel));
}

/** Escalate to a person or to a department's experts, with a note: {user_id | department_id, note}. */
export function escalateDialog(ctx) {
  return modal(t("escalate.title"), (finish, cancel) => {
    const people = [...ctx.users.values()].filter((u) => u.active !== false && u.id !== ctx.me.id);
    // Experts first: they are who escalations are for.
    people.sort((a, b) => (a.role === "expert" ? 0 : 1) - (b.role === "expert" ? 0 : 1) || a.name.localeCompare(b.name));
    const departmentName = (id) => ctx.departments.get(id)?.name || "";
    const target = h("select", { name: "target", required: true, autofocus: true },
      h("option", { value: "" }, t("escalate.pick")),
      h("optgroup", { label: t("escalate.people") }, options(people.map((u) => [`user:${u.id}`,
        `${u.name} (${t(`role.${u.role}`)}${u.department_id ? `, ${departmentName(u.department_id)}` : ""})`]))),
      h("optgroup", { label: t("escalate.departments") }, options([...ctx.departments.values()].map((d) => [
        `department:${d.id}`, t("escalate.department_experts", { name: d.name })]))));
    const note = h("textarea", { name: "note", rows: "3", required: true });
    const error = h("p", { class: "form-error", role: "alert" });
    return h("form", { method: "dialog", onsubmit: (e) => {
      e.preventDefault();
      const [kind, id] = target.value.split(":");
      if (!kind || !note.value.trim()) {
        error.textContent = t("escalate.incomplete");
        return;
      }
      finish({ [kind === "user" ? "user_id" : "department_id"]: Number(id), note: note.value });
    } }, field(t("escalate.to"), target), field(t("escalate.note"), note, t("escalate.note_hint")), error,
    buttons(cancel, t("action.escalate")));
  });
}

export const CLOSE_REASONS = ["resolved", "no_reply_needed", "spam"];

/** Close with a reason: resolves with the reason. */
export function closeDialog() {
  return modal(t("close.title"), (finish, cancel) => {
    const radios = CLOSE_REASONS.map((reason, i) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "reason", value: reason, checked: i === 0, autofocus: i === 0 }),
      ` ${t(`close.${reason}`)}`));
    const form = h("form", { method: "dialog", onsubmit: (e) => {
      e.preventDefault();
      finish(new FormData(form).get("reason"));
    } }, h("fieldset", null, h("legend", null, t("close.reason")), radios), buttons(cancel, t("action.close")));
    return form;
  });
}

/** The keyboard shortcuts. */
export function helpDialog(shortcuts) {
  return modal(t("help.title"), (finish, cancel) => h("div", null,
    h("table", { class: "shortcuts" },
      h("tbody", null, shortcuts.map(([keys, what]) => h("tr", null,
        h("th", { scope: "row" }, keys.map((k, i) => [i ? " / " : "", h("kbd", null, k)])), h("td", null, what))))),
    h("p", { class: "hint" }, t("help.more")),
    h("div", { class: "dialog-buttons" }, h("button", { type: "button", class: "primary", onclick: cancel, autofocus: true },
      t("dialog.close")))));
}
