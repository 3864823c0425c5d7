// My account: my balance and my audit log, day by day.

import { billing } from "../api";
import { auditLog, dayPicker } from "../audit-log";
import { today } from "../config";
import { h } from "../dom";
import { money, moneyClass } from "../format";
import { figure, load } from "../ui";

export async function myAccountPage(main: HTMLElement): Promise<void> {
  const summary = h("section", { "aria-label": "Balance" });
  const log = h("section", { "aria-label": "Audit log" });
  const show = (day: string) =>
    load(log, async () => {
      const answer = await billing.getMyAccount({ date: day });
      // The balance is now, whatever day is shown.
      summary.replaceChildren(
        figure("Balance now", h("span", { class: moneyClass(answer.balanceCents) }, money(answer.balanceCents)), {
          "data-testid": "balance",
        }),
      );
      return auditLog(day, answer.entries);
    });
  const start = await today();
  main.append(
    h("h1", {}, "My account"),
    summary,
    h("p", { class: "hint" }, "A positive balance is paid out at the end of each day; a negative one carries over."),
    dayPicker("Day", start, (day) => void show(day)),
    log,
  );
  await show(start);
}
