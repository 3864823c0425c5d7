// What the server tells the app about the company: its time zone, its
// today (the business clock's, which a simulation may move) and whether
// self sign-up is on. Served by the web server as /config.json.

import { setTimeZone } from "./format";

/** The server's /config.json. */
export interface WebConfig {
  timeZone: string;
  today: string;
  signUpEnabled: boolean;
}

/** Fetches /config.json afresh (today changes at midnight). */
export async function loadConfig(): Promise<WebConfig> {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`cannot load /config.json: HTTP ${response.status}`);
  const config = (await response.json()) as WebConfig;
  setTimeZone(config.timeZone);
  return config;
}

/** The company's today, `YYYY-MM-DD`. */
export async function today(): Promise<string> {
  return (await loadConfig()).today;
}
