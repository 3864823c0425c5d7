// The app shell: a role-aware navigation, a router over the History API and
// the pages. A page a role may not use is neither linked nor rendered: a
// direct URL to it says "Not allowed" (the services refuse the calls anyway).

import { auth, whenSessionEnds } from "./api";
import { loadConfig } from "./config";
import { h, replace } from "./dom";
import { describe } from "./errors";
import { Role } from "./gen/popug/auth/v1/auth_pb";
import { accountingPage } from "./pages/accounting";
import { accountsPage } from "./pages/accounts";
import { allTasksPage } from "./pages/all-tasks";
import { analyticsPage } from "./pages/analytics";
import { myAccountPage } from "./pages/my-account";
import { myTasksPage } from "./pages/my-tasks";
import { operationsPage } from "./pages/operations";
import { signInPage, signUpPage } from "./pages/sign-in";
import * as session from "./session";

/** What a page gets to work with. */
export interface PageContext {
  account: session.SessionAccount;
  navigate: (path: string) => void;
}

interface Page {
  path: string;
  title: string;
  /** Roles that may open it; empty means anyone signed in. */
  roles: Role[];
  render: (main: HTMLElement, context: PageContext) => void | Promise<void>;
}

const PAGES: Page[] = [
  { path: "/tasks", title: "My tasks", roles: [], render: myTasksPage },
  { path: "/all-tasks", title: "All tasks", roles: [Role.MANAGER, Role.ADMIN], render: allTasksPage },
  { path: "/account", title: "My account", roles: [], render: myAccountPage },
  { path: "/accounting", title: "Accounting", roles: [Role.ACCOUNTANT, Role.ADMIN], render: accountingPage },
  { path: "/analytics", title: "Analytics", roles: [Role.ADMIN], render: analyticsPage },
  { path: "/accounts", title: "Accounts", roles: [Role.ADMIN], render: accountsPage },
  { path: "/operations", title: "Operations", roles: [Role.ADMIN], render: operationsPage },
];

const ROLE_NAMES: Record<Role, string> = {
  [Role.UNSPECIFIED]: "unknown",
  [Role.WORKER]: "worker",
  [Role.MANAGER]: "manager",
  [Role.ACCOUNTANT]: "accountant",
  [Role.ADMIN]: "admin",
};

/** A role as people say it. */
export function roleName(role: Role): string {
  return ROLE_NAMES[role] ?? "unknown";
}

function allowed(page: Page, role: Role): boolean {
  return page.roles.length === 0 || page.roles.includes(role);
}

const root = document.getElementById("app") as HTMLElement;
let notice = "";

function navigate(path: string): void {
  history.pushState(null, "", path);
  void render();
}

function header(account: session.SessionAccount | null, current: string): HTMLElement {
  const links = account
    ? PAGES.filter((page) => allowed(page, account.role)).map((page) =>
        h("a", { href: page.path, "data-link": true, "aria-current": page.path === current ? "page" : null }, page.title),
      )
    : [];
  return h(
    "header",
    { class: "top" },
    h("a", { href: "/", "data-link": true, class: "brand" }, "popug"),
    account ? h("nav", { "aria-label": "Main" }, links) : null,
    account
      ? h(
          "div",
          { class: "who" },
          h("span", {}, `${account.name || account.login} · ${roleName(account.role)}`),
          h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"),
        )
      : null,
  );
}

function signOut(): void {
  session.clear();
  notice = "You are signed out.";
  navigate("/sign-in");
}

async function render(): Promise<void> {
  const path = window.location.pathname;
  const account = session.current()?.account ?? null;
  const main = h("main", { id: "main", tabindex: "-1" });
  const context = (signedIn: session.SessionAccount): PageContext => ({ account: signedIn, navigate });

  if (path === "/sign-in" || path === "/sign-up" || !account) {
    if (account) return navigate("/tasks");
    replace(root, header(null, path), main);
    const shown = notice;
    notice = "";
    const next = path === "/sign-in" || path === "/sign-up" || path === "/" ? "/tasks" : path;
    if (path === "/sign-up") await signUpPage(main, navigate);
    else await signInPage(main, navigate, shown, next);
    return;
  }
  if (path === "/") return navigate("/tasks");

  const page = PAGES.find((candidate) => candidate.path === path);
  replace(root, header(account, path), main);
  if (!page) {
    document.title = "Not found · popug";
    replace(main, h("h1", {}, "Page not found"), h("p", {}, "There is no page at this address."));
    return;
  }
  document.title = `${page.title} · popug`;
  if (!allowed(page, account.role)) {
    const who = page.roles.map(roleName).join(" and ");
    replace(
      main,
      h("h1", {}, "Not allowed"),
      h(
        "p",
        { class: "not-allowed", role: "alert" },
        `${page.title} is for ${who} only. You are signed in as ${account.login} (${roleName(account.role)}).`,
      ),
      h("p", {}, h("a", { href: "/tasks", "data-link": true }, "Back to my tasks")),
    );
    return;
  }
  await page.render(main, context(account));
}

document.addEventListener("click", (event) => {
  const link = (event.target as Element).closest?.("a[data-link]");
  if (!link || event.defaultPrevented || (event as MouseEvent).ctrlKey || (event as MouseEvent).metaKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href") ?? "/");
});
window.addEventListener("popstate", () => void render());
whenSessionEnds((reason) => {
  notice = reason;
  navigate("/sign-in");
});

async function start(): Promise<void> {
  try {
    await loadConfig();
  } catch (error) {
    replace(root, h("p", { class: "error", role: "alert" }, describe(error)));
    return;
  }
  // The role may have changed since sign-in: ask who we are now.
  if (session.current()) {
    try {
      const me = await auth.whoAmI({});
      if (me.account) session.updateAccount(me.account);
    } catch {
      // An ended session was handled by the refresh; anything else shows on the page.
    }
  }
  await render();
}

void start();
