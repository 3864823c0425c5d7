// All tasks (managers, admins): filters and the shuffle.

import { tracker } from "../api";
import { field, h, replace, table } from "../dom";
import { namer } from "../directory";
import { describe } from "../errors";
import { dateTime } from "../format";
import { type Task, TaskStatus } from "../gen/popug/tracker/v1/tracker_pb";
import type { PageContext } from "../main";
import { actionButton, status } from "../ui";

const STATUS_NAMES: Record<TaskStatus, string> = {
  [TaskStatus.UNSPECIFIED]: "",
  [TaskStatus.OPEN]: "Open",
  [TaskStatus.DONE]: "Done",
};

export function allTasksPage(main: HTMLElement, context: PageContext): void {
  const shuffled = status();
  const statusFilter = h(
    "select",
    { name: "status" },
    h("option", { value: String(TaskStatus.UNSPECIFIED) }, "Any"),
    h("option", { value: String(TaskStatus.OPEN) }, "Open"),
    h("option", { value: String(TaskStatus.DONE) }, "Done"),
  );
  const search = h("input", { name: "search", type: "search", placeholder: "Key, title or jira id" });
  const assignee = h("select", { name: "assignee" }, h("option", { value: "" }, "Anyone"));
  const results = h("section", { "aria-live": "polite", "aria-busy": "true" });
  let tasks: Task[] = [];
  let nextPageToken = "";
  let name: (accountId: string) => string = (id) => id;

  const show = () => {
    const text = search.value.trim().toLowerCase();
    const shown = tasks.filter(
      (task) =>
        (!assignee.value || task.assigneeId === assignee.value) &&
        (!text || [task.key, task.title, task.jiraId].some((value) => value.toLowerCase().includes(text))),
    );
    replace(
      results,
      h("p", { class: "hint" }, `${shown.length} of ${tasks.length} loaded tasks`),
      table(
        "Tasks",
        ["Key", "Title", "Jira id", "Status", "Assignee", "Created"],
        shown.map((task) => [task.key, task.title, task.jiraId, STATUS_NAMES[task.status], name(task.assigneeId), dateTime(task.createdAt)]),
        "No tasks match.",
      ),
      nextPageToken ? h("button", { type: "button", onclick: () => void fetchPage(false) }, "Load more") : null,
    );
  };

  const fetchPage = async (first: boolean) => {
    if (first) {
      tasks = [];
      nextPageToken = "";
      replace(results, h("p", { class: "loading" }, "Loading…"));
    }
    results.setAttribute("aria-busy", "true");
    try {
      const page = await tracker.listTasks({ status: Number(statusFilter.value), pageSize: 200, pageToken: nextPageToken });
      tasks.push(...page.tasks);
      nextPageToken = page.nextPageToken;
      const chosen = assignee.value;
      const ids = [...new Set(tasks.map((task) => task.assigneeId))].sort((a, b) => name(a).localeCompare(name(b)));
      replace(assignee, h("option", { value: "" }, "Anyone"), ids.map((id) => h("option", { value: id, selected: id === chosen }, name(id))));
      show();
    } catch (error) {
      replace(results, h("p", { class: "error", role: "alert" }, describe(error)));
    } finally {
      results.removeAttribute("aria-busy");
    }
  };

  statusFilter.addEventListener("change", () => void fetchPage(true));
  search.addEventListener("input", show);
  assignee.addEventListener("change", show);

  main.append(
    h("h1", {}, "All tasks"),
    h(
      "div",
      { class: "card" },
      h("h2", {}, "Shuffle"),
      h("p", {}, "Every open task goes to a random active worker; each assignment charges its fee again."),
      actionButton(
        "Shuffle open tasks",
        async () => {
          if (!window.confirm("Reassign every open task to a random worker?")) return "Shuffle cancelled.";
          const answer = await tracker.shuffleTasks({});
          await fetchPage(true);
          return `Reassigned ${answer.reassigned} open tasks.`;
        },
        shuffled,
      ),
      shuffled,
    ),
    h(
      "form",
      { class: "filters", role: "search", onsubmit: (event: Event) => event.preventDefault() },
      field("Status", statusFilter),
      field("Search", search),
      field("Assignee", assignee),
    ),
    results,
  );
  void (async () => {
    try {
      name = await namer(context.account);
    } catch {
      // Names are a nicety; ids still show.
    }
    await fetchPage(true);
  })();
}
