// Small pieces the pages share.
import { get } from "./api.js";
import { fill, h } from "./dom.js";
import { absolute, relative, t } from "./i18n.js";

export const PLATFORMS = {
  x: "X", mastodon: "Mastodon", facebook: "Facebook", instagram: "Instagram", email: "E-mail", api: "API",
};

/** How long a reply may be on each platform, in characters; none for e-mail and the API channel. */
export const REPLY_LIMITS = { x: 280, mastodon: 500, facebook: 8000, instagram: 2200 };

export function replyLimit(account) {
  if (!account) return null;
  const own = account.settings && (account.settings.reply_limit ?? account.settings.max_length);
  if (typeof own === "number" && own > 0) return own;
  return REPLY_LIMITS[account.platform] ?? null;
}

/** Characters as X and Mastodon count them: code points, with every link counting as 23. */
export function replyLength(text) {
  const links = text.match(/https?:\/\/\S+/g) || [];
  let rest = text;
  for (const link of links) rest = rest.replace(link, "");
  return [...rest].length + links.length * 23;
}

/** A <time> that reads "12 min" and shows the date and time in the person's zone on hover. */
export function timeEl(iso, { prefix = null, className = "" } = {}) {
  if (!iso) return null;
  const el = h("time", { datetime: iso, title: absolute(iso), class: className, dataset: { relative: prefix || "" } });
  el.textContent = prefix ? t(prefix, { time: relative(iso) }) : relative(iso);
  return el;
}

/** Refresh every relative time on the page (they go stale by the minute). */
export function tickTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time[data-relative]")) {
    const iso = el.getAttribute("datetime");
    const prefix = el.dataset.relative;
    el.textContent = prefix ? t(prefix, { time: relative(iso, now) }) : relative(iso, now);
    el.title = absolute(iso);
  }
}

export function platformBadge(platform) {
  return h("span", { class: `platform platform-${platform}`, title: PLATFORMS[platform] || platform },
    PLATFORMS[platform] || platform);
}

/** An account's handle and, where it says more, its name: "@gemeente · Gemeente (X)". */
export function accountTitle(account) {
  if (!account) return "";
  const label = accountLabel(account);
  return label === account.name ? label : `${label} · ${account.name}`;
}

export function accountLabel(account) {
  if (!account) return "";
  return account.platform === "api" || account.platform === "email" ? account.name : `@${account.handle}`;
}

/** The status; "claimed" is left to the tag that says by whom. */
export function statusChip(status, claimed = false) {
  if (status === "claimed" && claimed) return null;
  return h("span", { class: `chip chip-${status}` }, t(`status.${status}`));
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

export function options(pairs, selected) {
  return pairs.map(([value, label]) => h("option", { value: String(value), selected: String(value) === String(selected) },
    label));
}

/** The words for an API error, in the person's language where we know the code. */
export function errorText(error) {
  // A reply the house style refuses: the broken rule, in the person's language (see messages_assist.js).
  const problem = error && error.details && Array.isArray(error.details.problems) ? error.details.problems[0] : null;
  if (problem && problem.rule && t(`style.${problem.rule}`) !== `style.${problem.rule}`) {
    return t(`style.${problem.rule}`, problem);
  }
  const known = error && error.code ? t(`error.${error.code}`) : null;
  if (known && known !== `error.${error.code}`) {
    const who = error.details && error.details.claimed_by && error.details.claimed_by.name;
    return who ? t("error.already_claimed_by", { name: who }) : known;
  }
  return (error && error.message) || t("error.unknown");
}

/** The collapsed box a page creates things from: "New ..." that opens onto `form`. */
export function createDetails(summary, form) {
  return h("details", { class: "create-details" }, h("summary", null, summary), form);
}

/** A list page's items from `path`, the page's reference data (`refresh`, when it needs it) fetched beside
 *  them; on failure the error in `box` and null. */
export async function loadItems(path, box, refresh) {
  try {
    const [answer] = await Promise.all([get(path), refresh ? refresh() : null]);
    return answer.items;
  } catch (e) {
    fill(box, h("p", { role: "alert" }, errorText(e)));
    return null;
  }
}
