// Message text from a platform or a person: shown exactly as written, as text. Web addresses in it become
// links the person may choose to follow: the full address is what shows, only http(s) qualifies, and
// nothing is fetched or opened by itself (no previews, no referrer, a new tab only on a click).
import { h } from "./dom.js";

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}»”’]+$/;

export function messageText(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let raw = match[0];
    const trailing = raw.match(TRAILING);
    if (trailing) raw = raw.slice(0, raw.length - trailing[0].length);
    const start = match.index;
    if (start > last) parts.push(text.slice(last, start));
    parts.push(link(raw));
    last = start + raw.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function link(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return raw;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return raw;
  const a = h("a", { class: "ext", target: "_blank", rel: "noopener noreferrer nofollow ugc", referrerpolicy: "no-referrer" },
    raw);
  a.href = url.href;
  return a;
}
