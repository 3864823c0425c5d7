// Loading and error states, written once for every page.

import { type Child, h, replace } from "./dom";
import { clearErrors, describe, showError } from "./errors";

/** Shows "Loading…" in `container`, then what `load` builds, or its error. */
export async function load(container: HTMLElement, build: () => Promise<Child>): Promise<void> {
  container.setAttribute("aria-busy", "true");
  replace(container, h("p", { class: "loading" }, "Loading…"));
  try {
    replace(container, await build());
  } catch (error) {
    replace(container, h("p", { class: "error", role: "alert" }, describe(error)));
  } finally {
    container.removeAttribute("aria-busy");
  }
}

/** A status line that screen readers announce. */
export function status(): HTMLElement {
  return h("p", { class: "status", role: "status", "aria-live": "polite" });
}

/**
 * Runs `action` when `form` is submitted: the submit button is disabled
 * meanwhile, errors are shown by their field, and `done` reports success.
 */
export function onSubmit(form: HTMLFormElement, action: () => Promise<string | void>, done?: HTMLElement): void {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector<HTMLButtonElement>("button[type=submit]");
    if (button) button.disabled = true;
    if (done) done.textContent = "";
    clearErrors(form);
    try {
      const message = await action();
      if (done && message) done.textContent = message;
    } catch (error) {
      showError(form, error);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** A button whose click runs `action`, reporting into `done` or an alert. */
export function actionButton(
  label: string,
  action: () => Promise<string | void>,
  done: HTMLElement,
  attrs: Record<string, string> = {},
): HTMLButtonElement {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    done.classList.remove("error");
    done.textContent = "Working…";
    try {
      done.textContent = (await action()) ?? "";
    } catch (error) {
      done.classList.add("error");
      done.textContent = describe(error);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A figure with its label, e.g. a balance. */
export function figure(label: string, value: Child, attrs: Record<string, string> = {}): HTMLElement {
  return h("div", { class: "figure" }, h("span", { class: "figure-label" }, label), h("strong", attrs, value));
}
