// Accounts (admins): create, change role, deactivate.

import { auth } from "../api";
import { allAccounts } from "../directory";
import { field, h, table } from "../dom";
import { dateTime } from "../format";
import { type Account, Role } from "../gen/popug/auth/v1/auth_pb";
import { type PageContext, roleName } from "../main";
import { actionButton, load, onSubmit, status } from "../ui";

const ROLES = [Role.WORKER, Role.MANAGER, Role.ACCOUNTANT, Role.ADMIN];

function roleSelect(name: string, selected: Role): HTMLSelectElement {
  return h(
    "select",
    { name },
    ROLES.map((role) => h("option", { value: String(role), selected: role === selected }, roleName(role))),
  );
}

export function accountsPage(main: HTMLElement, context: PageContext): void {
  const created = status();
  const changed = status();
  const list = h("section", { "aria-labelledby": "accounts-title" });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-account-title" },
    h("h2", { id: "new-account-title" }, "New account"),
    field("Login", h("input", { name: "login", required: true, autocomplete: "off", autocapitalize: "none" }), "3 to 32 of a-z, 0-9, . _ -"),
    field("Password", h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" }), "8 to 128 characters"),
    field("Name", h("input", { name: "name", required: true, autocomplete: "off" })),
    field("Email", h("input", { name: "email", type: "email", required: true, autocomplete: "off" })),
    field("Role", roleSelect("role", Role.WORKER)),
    h("button", { type: "submit" }, "Create account"),
    created,
  );

  const row = (account: Account) => {
    const role = roleSelect("role", account.role);
    role.setAttribute("aria-label", `Role of ${account.login}`);
    const self = account.accountId === context.account.accountId;
    return [
      account.login,
      account.name,
      account.email,
      h(
        "span",
        { class: "inline" },
        role,
        actionButton(
          "Change",
          async () => {
            const answer = await auth.changeRole({ accountId: account.accountId, role: Number(role.value) });
            return `${account.login} is now ${roleName(answer.account?.role ?? Number(role.value))}.`;
          },
          changed,
          { "aria-label": `Change role of ${account.login}` },
        ),
      ),
      account.active ? "Active" : "Deactivated",
      dateTime(account.createdAt),
      account.active && !self
        ? actionButton(
            "Deactivate",
            async () => {
              if (!window.confirm(`Deactivate ${account.login}? They can no longer sign in or get tasks.`)) return "Not deactivated.";
              await auth.deactivateAccount({ accountId: account.accountId });
              refresh();
              return `${account.login} is deactivated.`;
            },
            changed,
            { "aria-label": `Deactivate ${account.login}`, class: "danger" },
          )
        : null,
    ];
  };

  const refresh = () =>
    void load(list, async () => {
      const accounts = await allAccounts();
      return [
        h("h2", { id: "accounts-title" }, "Accounts"),
        changed,
        table("Every account", ["Login", "Name", "Email", "Role", "Status", "Created", ""], accounts.map(row), "No accounts."),
      ];
    });

  onSubmit(
    form,
    async () => {
      const data = new FormData(form);
      const answer = await auth.createAccount({
        login: String(data.get("login")),
        password: String(data.get("password")),
        name: String(data.get("name")),
        email: String(data.get("email")),
        role: Number(data.get("role")),
      });
      form.reset();
      refresh();
      return `Created ${answer.account?.login} (${roleName(answer.account?.role ?? Role.UNSPECIFIED)}).`;
    },
    created,
  );
  main.append(h("h1", {}, "Accounts"), form, list);
  refresh();
}
