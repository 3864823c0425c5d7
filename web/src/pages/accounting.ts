// Accounting (accountants, admins): management's earnings today and by day,
// every popug's balance and audit log, and closing a day (admins).

import { billing } from "../api";
import { auditLog, dayPicker } from "../audit-log";
import { barChart } from "../chart";
import { today } from "../config";
import { append, field, h, replace, table } from "../dom";
import { addDays, day as dayLabel, money, moneyClass } from "../format";
import { Role } from "../gen/popug/auth/v1/auth_pb";
import type { Balance } from "../gen/popug/billing/v1/billing_pb";
import { type PageContext, roleName } from "../main";
import { figure, load, onSubmit, status } from "../ui";

export async function accountingPage(main: HTMLElement, context: PageContext): Promise<void> {
  const start = await today();
  const todays = h("section", { "aria-labelledby": "earnings-today-title" });
  const balances = h("section", { "aria-labelledby": "balances-title" });
  const detail = h("section", { "aria-live": "polite" });

  const showToday = () =>
    load(todays, async () => {
      const { days } = await billing.getManagementEarnings({ from: start, to: start });
      const row = days[0];
      return [
        h("h2", { id: "earnings-today-title" }, `Management earnings today, ${dayLabel(start)}`),
        h(
          "div",
          { class: "figures" },
          figure("Earnings", h("span", { class: moneyClass(row?.earningsCents ?? 0n) }, money(row?.earningsCents ?? 0n)), {
            "data-testid": "earnings-today",
          }),
          figure("Fees charged", money(row?.feesCents ?? 0n)),
          figure("Rewards paid", money(row?.rewardsCents ?? 0n)),
        ),
      ];
    });

  const range = h(
    "form",
    { class: "filters" },
    field("From", h("input", { type: "date", name: "from", value: addDays(start, -13), required: true })),
    field("To", h("input", { type: "date", name: "to", value: start, required: true })),
    h("button", { type: "submit" }, "Show"),
  );
  const chartArea = h("div");
  const showDays = () =>
    load(chartArea, async () => {
      const data = new FormData(range);
      const { days } = await billing.getManagementEarnings({ from: String(data.get("from")), to: String(data.get("to")) });
      return [
        barChart(
          "Management earnings by day",
          days.map((row) => ({ day: row.date, cents: row.earningsCents })),
        ),
        table(
          "Management earnings by day",
          ["Day", "Fees charged", "Rewards paid", "Earnings"],
          days.map((row) => [
            dayLabel(row.date),
            money(row.feesCents),
            money(row.rewardsCents),
            h("span", { class: moneyClass(row.earningsCents), "data-day": row.date }, money(row.earningsCents)),
          ]),
          "No days.",
        ),
      ];
    });
  onSubmit(range, showDays);

  const showAccount = (balance: Balance) => {
    const log = h("div");
    const showDay = (day: string) =>
      load(log, async () => {
        const answer = await billing.getAccount({ accountId: balance.accountId, date: day });
        return [
          figure("Balance now", h("span", { class: moneyClass(answer.balanceCents) }, money(answer.balanceCents))),
          auditLog(day, answer.entries),
        ];
      });
    replace(
      detail,
      h("h2", { id: "account-detail-title" }, `Account of ${balance.login || balance.accountId}`),
      dayPicker("Day", start, (day) => void showDay(day)),
      log,
    );
    void showDay(start);
    detail.scrollIntoView({ block: "start" });
  };

  const showBalances = () =>
    load(balances, async () => {
      const all: Balance[] = [];
      let pageToken = "";
      do {
        const page = await billing.listBalances({ pageSize: 1000, pageToken });
        all.push(...page.balances);
        pageToken = page.nextPageToken;
      } while (pageToken);
      return [
        h("h2", { id: "balances-title" }, "Balances"),
        table(
          "Every popug's balance now",
          ["Popug", "Role", "Status", "Balance", ""],
          all.map((balance) => [
            balance.login || balance.accountId,
            roleName(balance.role),
            balance.active ? "Active" : "Deactivated",
            h("span", { class: moneyClass(balance.balanceCents), "data-login": balance.login }, money(balance.balanceCents)),
            h(
              "button",
              { type: "button", class: "link", onclick: () => showAccount(balance), "aria-label": `Audit log of ${balance.login}` },
              "Audit log",
            ),
          ]),
          "No popugs yet.",
        ),
      ];
    });

  append(main, [
    h("h1", {}, "Accounting"),
    todays,
    h("section", { "aria-labelledby": "earnings-by-day-title" }, h("h2", { id: "earnings-by-day-title" }, "Earnings by day"), range, chartArea),
    balances,
    detail,
    context.account.role === Role.ADMIN ? closeDay(start) : null,
  ]);
  await Promise.all([showToday(), showDays(), showBalances()]);
}

function closeDay(start: string): HTMLElement {
  const done = status();
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "close-day-title" },
    h("h2", { id: "close-day-title" }, "Close a day"),
    h("p", {}, "Pays out every positive balance at the end of the day; negative balances carry over. Closing twice pays nobody twice."),
    field("Day", h("input", { type: "date", name: "date", value: addDays(start, -1), required: true })),
    h("button", { type: "submit" }, "Close day"),
    done,
  );
  onSubmit(
    form,
    async () => {
      const date = String(new FormData(form).get("date"));
      if (!window.confirm(`Close ${dayLabel(date)} and pay out every positive balance?`)) return "Not closed.";
      const answer = await billing.closeDay({ date });
      return answer.alreadyClosed
        ? `${dayLabel(answer.date)} was already closed; nobody was paid again.`
        : `Closed ${dayLabel(answer.date)}: ${answer.accountsClosed} popugs paid ${money(answer.payoutsCents)}.`;
    },
    done,
  );
  return form;
}
