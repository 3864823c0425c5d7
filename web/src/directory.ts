// Names of popugs for showing ids: admins may list accounts; others see a
// short id.

import { auth } from "./api";
import { type Account, Role } from "./gen/popug/auth/v1/auth_pb";
import type { SessionAccount } from "./session";

/** Every account, page by page (admins only). */
export async function allAccounts(): Promise<Account[]> {
  const accounts: Account[] = [];
  let pageToken = "";
  do {
    const page = await auth.listAccounts({ pageSize: 1000, pageToken });
    accounts.push(...page.accounts);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return accounts;
}

/** A function naming an account id, as well as the caller may know it. */
export async function namer(caller: SessionAccount): Promise<(accountId: string) => string> {
  const names = new Map<string, string>();
  if (caller.role === Role.ADMIN) {
    for (const account of await allAccounts()) names.set(account.accountId, `${account.name} (${account.login})`);
  }
  names.set(caller.accountId, `${caller.name} (${caller.login})`);
  return (accountId) => names.get(accountId) ?? (accountId ? `popug ${accountId.slice(0, 8)}` : "");
}
