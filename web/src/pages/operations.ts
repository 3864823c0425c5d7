// Operations (admins): each service's outbox backlog and relay health, its
// dead letters with their errors, and replay.

import { SERVICES, type ServiceName, ops } from "../api";
import { h, table } from "../dom";
import { dateTime } from "../format";
import { actionButton, load, status } from "../ui";

export function operationsPage(main: HTMLElement): void {
  main.append(
    h("h1", {}, "Operations"),
    h("p", { class: "hint" }, "Events leave each service through its outbox; a message a consumer cannot handle is dead-lettered until replayed."),
  );
  for (const service of SERVICES) main.append(serviceCard(service));
}

function serviceCard(service: ServiceName): HTMLElement {
  const body = h("div");
  const replayed = status();
  const client = ops(service);
  const refresh = () =>
    load(body, async () => {
      const [outbox, letters] = await Promise.all([
        client.getOutboxStatus({}),
        client.listDeadLetters({ pageSize: 50, includeResolved: false }),
      ]);
      const relay =
        service === "analytics"
          ? "no relay (analytics produces no events)"
          : outbox.relayConnected
            ? "connected"
            : "not connected";
      return [
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Outbox backlog"),
          h("dd", { "data-testid": `${service}-pending` }, `${outbox.pending} events`),
          h("dt", {}, "Oldest waiting"),
          h("dd", {}, outbox.pending > 0n ? `${Number(outbox.oldestPendingAgeMs) / 1000} s (${dateTime(outbox.oldestPendingAt)})` : "none"),
          h("dt", {}, "Relay"),
          h("dd", {}, relay),
          outbox.lastError ? [h("dt", {}, "Last relay error"), h("dd", { class: "error" }, outbox.lastError)] : null,
          h("dt", {}, "Dead letters"),
          h("dd", { "data-testid": `${service}-dead-letters` }, `${letters.unresolved} unresolved, ${letters.deadLetterQueueDepth} in the dead-letter queue`),
        ),
        table(
          `Dead letters of ${service}-svc`,
          ["Failed", "Event", "Routing key", "Failures", "Error"],
          letters.deadLetters.map((letter) => [
            dateTime(letter.failedAt),
            letter.eventType || "(unreadable)",
            letter.routingKey,
            String(letter.failures),
            h("span", { class: "error-text" }, letter.error),
          ]),
          "No unresolved dead letters.",
        ),
        letters.deadLetterQueueDepth > 0n || letters.unresolved > 0n
          ? actionButton(
              "Replay dead letters",
              async () => {
                const answer = await client.replayDeadLetters({});
                void refresh();
                return `Replayed ${answer.replayed} messages into ${service}'s live queue.`;
              },
              replayed,
              { "aria-label": `Replay dead letters of ${service}-svc` },
            )
          : null,
        replayed,
      ];
    });
  const card = h(
    "section",
    { class: "card", "aria-labelledby": `ops-${service}` },
    h("h2", { id: `ops-${service}` }, `${service}-svc`),
    body,
  );
  void refresh();
  return card;
}
