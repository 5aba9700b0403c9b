// Signing in when the server runs with -auth token. The token lives in this tab's
// sessionStorage (and the client's memory), never in a URL; a 401 from any request asks again.

import { act, errorSlot, field, h } from "./dom.js";

const KEY = "dffml-service-http-ui/token";

export class Session {
  constructor(app, slot) {
    this.app = app;
    this.slot = slot;
    this.user = null;
    const kept = globalThis.sessionStorage.getItem(KEY);
    if (kept) {
      app.api.token = kept;
    }
    this.dialog = this.buildDialog();
    document.body.append(this.dialog);
    this.waiting = [];
    document.addEventListener("unauthorized", () => this.ask());
  }

  /* Resolves once requests are allowed: at once with -auth none or a valid kept token. */
  async ready() {
    try {
      await this.app.api.list("sources");
    } catch (error) {
      if (error.status !== 401) {
        throw error;
      }
      this.forget();
      await this.ask();
    }
    await this.whoAmI();
  }

  /* Shows the login dialog; resolves after a successful login. */
  ask() {
    if (!this.dialog.open) {
      this.dialog.showModal();
      this.dialog.querySelector("input").focus();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async whoAmI() {
    this.user = null;
    if (this.app.api.token && typeof this.app.api.me === "function") {
      try {
        this.user = await this.app.api.me();
      } catch (_) {
        // A server without /auth/me: nothing to show.
      }
    }
    this.render();
  }

  forget() {
    this.app.api.token = null;
    globalThis.sessionStorage.removeItem(KEY);
  }

  render() {
    if (!this.user) {
      this.slot.replaceChildren();
      return;
    }
    const out = h("button", { type: "button", class: "small", id: "logout" }, "Sign out");
    const error = errorSlot("logout-error");
    out.addEventListener("click", () =>
      act(out, error, async () => {
        await this.app.api.logout().catch(() => {
          // Revoking failed (expired already, say): forgetting the token is what matters here.
        });
        this.forget();
        globalThis.location.reload();
      }),
    );
    this.slot.replaceChildren(h("span", { id: "signed-in" }, `Signed in as ${this.user.username}`), out, error);
  }

  buildDialog() {
    const username = h("input", { type: "text", id: "login-username", name: "username", autocomplete: "username", required: true, spellcheck: "false" });
    const password = h("input", { type: "password", id: "login-password", name: "password", autocomplete: "current-password", required: true });
    const submit = h("button", { type: "submit", id: "login-submit" }, "Sign in");
    const error = errorSlot("login-error");
    const form = h(
      "form",
      { id: "login-form", novalidate: true },
      h("h2", { id: "login-title" }, "Sign in"),
      h("p", { class: "muted" }, "This server runs with ", h("code", {}, "-auth token"), ": sign in to use it."),
      field("User name", username),
      field("Password", password),
      h("div", { class: "toolbar" }, submit, error),
    );
    const dialog = h("dialog", { id: "login", "aria-labelledby": "login-title" }, form);
    // Escape must not leave a dialog that every request needs.
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      act(submit, error, async () => {
        const body = await this.app.api.login(username.value, password.value);
        globalThis.sessionStorage.setItem(KEY, body.access_token);
        password.value = "";
        dialog.close();
        await this.whoAmI();
        for (const resolve of this.waiting.splice(0)) {
          resolve();
        }
      });
    });
    return dialog;
  }
}
