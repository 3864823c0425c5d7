// Errors as a person reads them, and field errors shown by their field.

import { Code, ConnectError } from "@connectrpc/connect";
import { h } from "./dom";

/** A plain sentence for any failed call. */
export function describe(error: unknown): string {
  const failure = ConnectError.from(error);
  const message = failure.rawMessage;
  switch (failure.code) {
    case Code.PermissionDenied:
      return `Not allowed: ${message}`;
    case Code.Unavailable:
      return `A service is unavailable, try again shortly (${message})`;
    case Code.Unauthenticated:
      return message || "Please sign in again";
    case Code.DeadlineExceeded:
      return "The service took too long to answer; try again";
    default:
      return message;
  }
}

/** The request field an INVALID_ARGUMENT names (`invalid \`jira_id\`: ...` -> `jiraId`). */
export function fieldOf(error: unknown): string | null {
  const failure = ConnectError.from(error);
  if (failure.code !== Code.InvalidArgument) return null;
  const named = /invalid `([a-z_]+)`/.exec(failure.rawMessage);
  return named ? named[1].replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase()) : null;
}

/** Removes the errors a form showed. */
export function clearErrors(form: HTMLFormElement): void {
  form.querySelectorAll(".field-error, .form-error").forEach((node) => node.remove());
  form.querySelectorAll("[aria-invalid]").forEach((node) => {
    node.removeAttribute("aria-invalid");
    const hint = node.getAttribute("aria-describedby")?.split(" ").filter((id) => !id.endsWith("-error"));
    if (hint?.length) node.setAttribute("aria-describedby", hint.join(" "));
    else node.removeAttribute("aria-describedby");
  });
}

/** Shows `error` next to the field it names, or at the top of the form. */
export function showError(form: HTMLFormElement, error: unknown): void {
  clearErrors(form);
  const name = fieldOf(error);
  const input = name ? form.querySelector<HTMLElement>(`[name="${name}"]`) : null;
  const text = describe(error);
  if (input) {
    const id = `${input.id}-error`;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
    input.insertAdjacentElement("afterend", h("p", { class: "field-error", id, role: "alert" }, text));
    input.focus();
  } else {
    form.prepend(h("p", { class: "form-error", role: "alert" }, text));
  }
}
