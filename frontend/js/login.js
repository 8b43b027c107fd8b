// Logging in: POST /api/session answers the user and the CSRF token; the cookie comes with it.
import { ApiError, post } from "./api.js";
import { h } from "./dom.js";
import { LANGUAGES, language, setLanguage, t } from "./i18n.js";
import { errorText, field } from "./ui.js";

export function loginPage(message, done) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "form-error", role: "alert" }, message || "");
  const submit = h("button", { type: "submit", class: "primary" }, t("login.submit"));
  const form = h("form", { class: "login-form", "aria-labelledby": "login-title", onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const answer = await post("/api/session", { email: email.value, password: password.value });
      await done(answer);
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401 ? t("login.bad") : errorText(err);
      password.select();
      submit.disabled = false;
    }
  } },
  h("h1", { id: "login-title" }, "Webcare"),
  h("p", { class: "hint" }, t("login.intro")),
  field(t("login.email"), email),
  field(t("login.password"), password),
  error, submit,
  h("label", { class: "login-lang" }, `${t("nav.language")} `, h("select", { onchange: (e) => setLanguage(e.target.value) },
    Object.entries(LANGUAGES).map(([code, name]) => h("option", { value: code, selected: code === language() }, name)))));
  return h("main", { class: "login", id: "main" }, form);
}
