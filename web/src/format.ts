// How money, days and times are shown: dollars with cents, computed from
// integer cents (never floating point); days and times in the company's
// time zone.

import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";

/** `-$1,234.56` from cents. */
export function money(cents: bigint | number): string {
  let value = BigInt(cents);
  const negative = value < 0n;
  if (negative) value = -value;
  const dollars = (value / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const rest = (value % 100n).toString().padStart(2, "0");
  return `${negative ? "-" : ""}$${dollars}.${rest}`;
}

/** The CSS class of an amount: negative amounts are shown in red. */
export function moneyClass(cents: bigint | number): string {
  return BigInt(cents) < 0n ? "money negative" : "money";
}

let timeZone = "UTC";

/**
 * Sets the company's time zone (from the server's /config.json): a zone name
 * or an offset such as "+05:30". One the browser cannot show (an offset with
 * seconds) leaves times in UTC, and says so in the console.
 */
export function setTimeZone(zone: string): void {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: zone });
    timeZone = zone;
  } catch {
    console.warn(`the browser cannot show times in ${zone}; showing UTC`);
  }
}

/** The company's time zone. */
export function companyTimeZone(): string {
  return timeZone;
}

/** A timestamp as a date and time in the company's time zone. */
export function dateTime(at: Timestamp | undefined): string {
  if (!at) return "";
  return new Intl.DateTimeFormat("en-GB", {
    timeZone,
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  }).format(timestampDate(at));
}

/** A timestamp's time of day in the company's time zone. */
export function time(at: Timestamp | undefined): string {
  if (!at) return "";
  return new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(
    timestampDate(at),
  );
}

/** A `YYYY-MM-DD` day as `Sat 28 Nov 2026` (the day is already the company's). */
export function day(value: string): string {
  if (!value) return "";
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: "UTC",
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
  }).format(new Date(`${value}T00:00:00Z`));
}

/** `value` (`YYYY-MM-DD`) moved by `days` calendar days. */
export function addDays(value: string, days: number): string {
  const date = new Date(`${value}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}
