// The generated clients over gRPC-Web, on the page's own origin: the web
// server routes `/popug.<service>.v1.<Service>/<Method>` to the service that
// serves it, and `/services/<service>/...` to one service by name (for
// popug.ops.v1.OpsService, which every service serves).
//
// Every call but sign-in, sign-up and refresh carries the access token; one
// about to expire, or refused as UNAUTHENTICATED, is quietly refreshed once.

import { Code, ConnectError, type Interceptor, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AnalyticsService } from "./gen/popug/analytics/v1/analytics_pb";
import { AuthService } from "./gen/popug/auth/v1/auth_pb";
import { BillingService } from "./gen/popug/billing/v1/billing_pb";
import { OpsService } from "./gen/popug/ops/v1/ops_pb";
import { TrackerService } from "./gen/popug/tracker/v1/tracker_pb";
import * as session from "./session";

const origin = window.location.origin;

/** Auth calls that need no token: sign-in, sign-up, refresh. */
export const publicAuth = createClient(AuthService, createGrpcWebTransport({ baseUrl: origin }));

/** Called when the session ended and could not be refreshed. */
let onSessionEnded: (reason: string) => void = () => {};
export function whenSessionEnds(handler: (reason: string) => void): void {
  onSessionEnded = handler;
}

let refreshing: Promise<string | null> | null = null;

/** Spends the refresh token for new tokens; one refresh at a time. */
function refresh(): Promise<string | null> {
  refreshing ??= (async () => {
    const stored = session.current();
    if (!stored) return null;
    try {
      const answer = await publicAuth.refresh({ refreshToken: stored.refreshToken });
      return session.save(answer).accessToken;
    } catch (error) {
      session.clear();
      onSessionEnded(`Your session ended (${ConnectError.from(error).rawMessage}). Please sign in again.`);
      return null;
    }
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** A token good for at least a minute more, refreshed if needed. */
async function accessToken(): Promise<string | null> {
  const stored = session.current();
  if (!stored) return null;
  if (Date.now() > stored.expiresAt - 60_000) return refresh();
  return stored.accessToken;
}

const bearer: Interceptor = (next) => async (request) => {
  const token = await accessToken();
  if (token) request.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(request);
  } catch (error) {
    // The token was refused before the handler ran (expired early, keys
    // rotated): refresh once and try again.
    if (token && ConnectError.from(error).code === Code.Unauthenticated && session.current()) {
      const fresh = await refresh();
      if (fresh) {
        request.header.set("authorization", `Bearer ${fresh}`);
        return await next(request);
      }
    }
    throw error;
  }
};

const transport = createGrpcWebTransport({ baseUrl: origin, interceptors: [bearer] });

export const auth = createClient(AuthService, transport);
export const tracker = createClient(TrackerService, transport);
export const billing = createClient(BillingService, transport);
export const analytics = createClient(AnalyticsService, transport);

/** The services, each serving its own popug.ops.v1.OpsService. */
export const SERVICES = ["auth", "tracker", "billing", "analytics"] as const;
export type ServiceName = (typeof SERVICES)[number];

/** One service's OpsService. */
export function ops(service: ServiceName) {
  return createClient(
    OpsService,
    createGrpcWebTransport({ baseUrl: `${origin}/services/${service}`, interceptors: [bearer] }),
  );
}
