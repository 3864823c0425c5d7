// Analytics (admins): a day's earnings and popugs in the red, the most
// expensive task of a period, and the figures by day. Built by
// analytics-svc from events; it agrees with billing to the cent.

import { analytics } from "../api";
import { barChart } from "../chart";
import { today } from "../config";
import { field, h, table } from "../dom";
import { addDays, dateTime, day as dayLabel, money, moneyClass } from "../format";
import { Period } from "../gen/popug/analytics/v1/analytics_pb";
import { dayPicker } from "../audit-log";
import { figure, load, onSubmit } from "../ui";

export async function analyticsPage(main: HTMLElement): Promise<void> {
  const start = await today();
  const dashboard = h("div");
  const showDashboard = (day: string) =>
    load(dashboard, async () => {
      const answer = await analytics.getDashboard({ date: day });
      return h(
        "div",
        { class: "figures" },
        figure(
          "Management earnings",
          h("span", { class: moneyClass(answer.managementEarningsCents) }, money(answer.managementEarningsCents)),
          { "data-testid": "analytics-earnings" },
        ),
        figure("Popugs in the red", String(answer.negativeBalancePopugs), { "data-testid": "analytics-negative" }),
      );
    });

  const period = h(
    "select",
    { name: "period" },
    h("option", { value: String(Period.DAY) }, "Today"),
    h("option", { value: String(Period.WEEK) }, "Last 7 days"),
    h("option", { value: String(Period.MONTH) }, "Last 30 days"),
    h("option", { value: String(Period.UNSPECIFIED) }, "Days from … to …"),
  );
  const from = h("input", { type: "date", name: "from", value: addDays(start, -6) });
  const to = h("input", { type: "date", name: "to", value: start });
  const rangeFields = h("div", { class: "filters", hidden: true }, field("From", from), field("To", to));
  period.addEventListener("change", () => {
    rangeFields.hidden = Number(period.value) !== Period.UNSPECIFIED;
  });
  const expensive = h("div", { "aria-live": "polite" });
  const expensiveForm = h("form", { class: "filters" }, field("Period", period), rangeFields, h("button", { type: "submit" }, "Show"));
  const showExpensive = () =>
    load(expensive, async () => {
      const chosen = Number(period.value) as Period;
      const answer = await analytics.getMostExpensiveTask(
        chosen === Period.UNSPECIFIED ? { period: chosen, from: from.value, to: to.value } : { period: chosen },
      );
      const task = answer.task;
      if (!task) return h("p", { class: "empty" }, "No task was completed in this period.");
      return h(
        "p",
        { class: "expensive" },
        h("strong", {}, `${task.key} ${task.title}`),
        ": reward ",
        h("span", { class: "money", "data-testid": "expensive-reward" }, money(task.rewardCents)),
        `, completed ${dateTime(task.completedAt)}`,
      );
    });
  onSubmit(expensiveForm, showExpensive);

  const statsForm = h(
    "form",
    { class: "filters" },
    field("From", h("input", { type: "date", name: "from", value: addDays(start, -13), required: true })),
    field("To", h("input", { type: "date", name: "to", value: start, required: true })),
    h("button", { type: "submit" }, "Show"),
  );
  const stats = h("div");
  const showStats = () =>
    load(stats, async () => {
      const data = new FormData(statsForm);
      const { days } = await analytics.getDailyStats({ from: String(data.get("from")), to: String(data.get("to")) });
      return [
        barChart(
          "Management earnings by day",
          days.map((row) => ({ day: row.date, cents: row.managementEarningsCents })),
        ),
        table(
          "Figures by day",
          ["Day", "Management earnings", "Popugs in the red"],
          days.map((row) => [
            dayLabel(row.date),
            h("span", { class: moneyClass(row.managementEarningsCents), "data-day": row.date }, money(row.managementEarningsCents)),
            String(row.negativeBalancePopugs),
          ]),
          "No days.",
        ),
      ];
    });
  onSubmit(statsForm, showStats);

  main.append(
    h("h1", {}, "Analytics"),
    h("section", { "aria-labelledby": "dashboard-title" }, h("h2", { id: "dashboard-title" }, "A day's figures"), dayPicker("Day", start, (day) => void showDashboard(day)), dashboard),
    h("section", { "aria-labelledby": "expensive-title" }, h("h2", { id: "expensive-title" }, "Most expensive task"), expensiveForm, expensive),
    h("section", { "aria-labelledby": "stats-title" }, h("h2", { id: "stats-title" }, "Figures by day"), statsForm, stats),
  );
  await Promise.all([showDashboard(start), showExpensive(), showStats()]);
}
