// Sign in, and sign up when the company allows it.

import { publicAuth } from "../api";
import { loadConfig } from "../config";
import { field, h, replace } from "../dom";
import * as session from "../session";
import { onSubmit } from "../ui";

export async function signInPage(
  main: HTMLElement,
  navigate: (path: string) => void,
  notice: string,
  next: string,
): Promise<void> {
  document.title = "Sign in · popug";
  const config = await loadConfig();
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "sign-in-title" },
    field("Login", h("input", { name: "login", autocomplete: "username", required: true, autocapitalize: "none" })),
    field("Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit" }, "Sign in"),
  );
  onSubmit(form, async () => {
    const data = new FormData(form);
    const answer = await publicAuth.login({ login: String(data.get("login")), password: String(data.get("password")) });
    session.save(answer);
    navigate(next);
  });
  replace(
    main,
    h("h1", { id: "sign-in-title" }, "Sign in"),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    form,
    config.signUpEnabled
      ? h("p", {}, "New popug? ", h("a", { href: "/sign-up", "data-link": true }, "Sign up"))
      : h("p", { class: "hint" }, "Ask an admin for an account."),
  );
  form.querySelector("input")?.focus();
}

export async function signUpPage(main: HTMLElement, navigate: (path: string) => void): Promise<void> {
  document.title = "Sign up · popug";
  const config = await loadConfig();
  if (!config.signUpEnabled) {
    replace(
      main,
      h("h1", {}, "Sign up"),
      h("p", { role: "alert" }, "Self sign-up is disabled here; ask an admin for an account."),
      h("p", {}, h("a", { href: "/sign-in", "data-link": true }, "Sign in")),
    );
    return;
  }
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "sign-up-title" },
    field(
      "Login",
      h("input", { name: "login", autocomplete: "username", required: true, autocapitalize: "none" }),
      "3 to 32 of a-z, 0-9, . _ -",
    ),
    field("Password", h("input", { name: "password", type: "password", autocomplete: "new-password", required: true }), "8 to 128 characters"),
    field("Name", h("input", { name: "name", autocomplete: "name", required: true })),
    field("Email", h("input", { name: "email", type: "email", autocomplete: "email", required: true })),
    h("button", { type: "submit" }, "Sign up"),
  );
  onSubmit(form, async () => {
    const data = new FormData(form);
    const login = String(data.get("login"));
    const password = String(data.get("password"));
    await publicAuth.signUp({ login, password, name: String(data.get("name")), email: String(data.get("email")) });
    session.save(await publicAuth.login({ login, password }));
    navigate("/tasks");
  });
  replace(
    main,
    h("h1", { id: "sign-up-title" }, "Sign up"),
    h("p", {}, "New accounts are workers: tasks are assigned to you, and you are paid for the ones you complete."),
    form,
    h("p", {}, "Have an account? ", h("a", { href: "/sign-in", "data-link": true }, "Sign in")),
  );
}
