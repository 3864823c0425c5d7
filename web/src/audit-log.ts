// One day of a popug's audit log: every entry with its task and reason.

import { type Child, h, table } from "./dom";
import { day as dayLabel, money, moneyClass, time } from "./format";
import { type Entry, EntryKind } from "./gen/popug/billing/v1/billing_pb";

const REASONS: Record<EntryKind, string> = {
  [EntryKind.UNSPECIFIED]: "Other",
  [EntryKind.ASSIGNMENT_FEE]: "Assignment fee",
  [EntryKind.COMPLETION_REWARD]: "Completion reward",
  [EntryKind.PAYOUT]: "Payout",
};

/** The reason of an entry kind, as people say it. */
export function reason(kind: EntryKind): string {
  return REASONS[kind] ?? "Other";
}

/** A table of `entries` of `day`, with the day's totals. */
export function auditLog(day: string, entries: Entry[]): Child {
  let total = 0n;
  for (const entry of entries) total += entry.amountCents;
  return [
    table(
      `Audit log of ${dayLabel(day)}`,
      ["Time", "Reason", "Task", "Amount", "Balance after"],
      entries.map((entry) => [
        time(entry.occurredAt),
        reason(entry.kind),
        entry.description,
        h("span", { class: moneyClass(entry.amountCents), "data-kind": EntryKind[entry.kind] }, money(entry.amountCents)),
        h("span", { class: moneyClass(entry.balanceAfterCents) }, money(entry.balanceAfterCents)),
      ]),
      `No entries on ${dayLabel(day)}.`,
    ),
    entries.length
      ? h("p", {}, "Day's total: ", h("span", { class: moneyClass(total), "data-testid": "day-total" }, money(total)))
      : null,
  ];
}

/** A day picker with previous and next buttons; `change` gets the new day. */
export function dayPicker(label: string, initial: string, change: (day: string) => void): HTMLElement {
  const input = h("input", { type: "date", name: "day", value: initial, required: true });
  const shift = (days: number) => {
    const date = new Date(`${input.value}T00:00:00Z`);
    date.setUTCDate(date.getUTCDate() + days);
    input.value = date.toISOString().slice(0, 10);
    change(input.value);
  };
  input.addEventListener("change", () => input.value && change(input.value));
  const id = `day-${Math.random().toString(36).slice(2, 8)}`;
  input.id = id;
  return h(
    "div",
    { class: "day-picker" },
    h("label", { for: id }, label),
    h("button", { type: "button", "aria-label": "Previous day", onclick: () => shift(-1) }, "‹"),
    input,
    h("button", { type: "button", "aria-label": "Next day", onclick: () => shift(1) }, "›"),
  );
}
