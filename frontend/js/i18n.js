// Dutch and English. The language follows the browser until the person picks one; the choice is kept.
import { MESSAGES } from "./messages.js";

export const LANGUAGES = { en: "English", nl: "Nederlands" };
const KEY = "webcare:lang";
let lang = pick();
const listeners = new Set();

function pick() {
  const saved = localStorage.getItem(KEY);
  if (saved && saved in LANGUAGES) return saved;
  for (const wanted of navigator.languages || [navigator.language || "en"]) {
    const base = String(wanted).toLowerCase().split("-")[0];
    if (base in LANGUAGES) return base;
  }
  return "en";
}

export function language() {
  return lang;
}

export function setLanguage(next) {
  if (!(next in LANGUAGES) || next === lang) return;
  lang = next;
  localStorage.setItem(KEY, next);
  document.documentElement.lang = next;
  for (const fn of listeners) fn(next);
}

export function onLanguage(fn) {
  listeners.add(fn);
}

/** The text for `key` in the current language, with {name} placeholders filled in (as text). */
export function t(key, params) {
  const text = MESSAGES[lang][key] ?? MESSAGES.en[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** `key` + ".one" or ".other" by count, with {n} filled in. */
export function tn(key, n, params) {
  const form = new Intl.PluralRules(lang).select(n) === "one" ? "one" : "other";
  return t(`${key}.${form}`, { n, ...params });
}

// Times: relative in words ("12 min"), absolute in the person's own time zone on hover.

const UNITS = [["day", 86400], ["hour", 3600], ["minute", 60]];

export function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 45) return t("time.now");
  for (const [unit, size] of UNITS) {
    if (seconds >= size || unit === "minute") {
      const n = Math.max(1, Math.round(seconds / size));
      return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: unit === "day" ? "long" : "short" })
        .format(n);
    }
  }
  return "";
}

export function absolute(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" }).format(new Date(iso));
}
