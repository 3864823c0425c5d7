// The signed-in session: tokens and the account, kept in sessionStorage (one
// session per tab: a refresh token is single-use, so two tabs sharing one
// would spend each other's; and it is gone when the tab closes).

import type { Account, Role } from "./gen/popug/auth/v1/auth_pb";

/** Who is signed in, as the app needs it. */
export interface SessionAccount {
  accountId: string;
  login: string;
  name: string;
  role: Role;
}

/** A signed-in session. */
export interface Session {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires (milliseconds since the epoch). */
  expiresAt: number;
  account: SessionAccount;
}

const KEY = "popug.session";

/** The current session, or null when signed out. */
export function current(): Session | null {
  const stored = sessionStorage.getItem(KEY);
  if (!stored) return null;
  try {
    return JSON.parse(stored) as Session;
  } catch {
    sessionStorage.removeItem(KEY);
    return null;
  }
}

/** Keeps the tokens of a Login or Refresh answer. */
export function save(tokens: {
  accessToken: string;
  refreshToken: string;
  expiresIn: bigint;
  account?: Account | undefined;
}): Session {
  const previous = current();
  const account = tokens.account ? accountOf(tokens.account) : previous?.account;
  if (!account) throw new Error("a session needs an account");
  const session: Session = {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresAt: Date.now() + Number(tokens.expiresIn) * 1000,
    account,
  };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

/** Updates the account (its role may have changed since sign-in). */
export function updateAccount(account: Account): void {
  const session = current();
  if (!session) return;
  session.account = accountOf(account);
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

/** Signs out locally. */
export function clear(): void {
  sessionStorage.removeItem(KEY);
}

function accountOf(account: Account): SessionAccount {
  return { accountId: account.accountId, login: account.login, name: account.name, role: account.role };
}
