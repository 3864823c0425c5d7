// My tasks: create a task (anyone), complete my open ones (their assignee).

import { tracker } from "../api";
import { append, type Child, field, h, table } from "../dom";
import { dateTime } from "../format";
import { Role } from "../gen/popug/auth/v1/auth_pb";
import { type Task, TaskStatus } from "../gen/popug/tracker/v1/tracker_pb";
import type { PageContext } from "../main";
import { actionButton, load, onSubmit, status } from "../ui";

export function myTasksPage(main: HTMLElement, context: PageContext): void {
  const created = status();
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-task-title" },
    h("h2", { id: "new-task-title" }, "New task"),
    field("Title", h("input", { name: "title", required: true, maxlength: 200 }), "One line; no [ or ] (put the jira id below)"),
    field("Jira id", h("input", { name: "jiraId", placeholder: "UBERPOP-42" }), "Optional"),
    field("Description", h("textarea", { name: "description", rows: 3 })),
    h("button", { type: "submit" }, "Create task"),
    created,
  );
  const list = h("section", { "aria-labelledby": "my-open-title" });
  const done = h("section", { "aria-labelledby": "my-done-title" });
  const completed = status();

  const refresh = () => {
    void load(list, async () => {
      const { tasks } = await tracker.listMyTasks({ status: TaskStatus.OPEN, pageSize: 200 });
      return [
        h("h2", { id: "my-open-title" }, "Open tasks"),
        completed,
        table(
          "My open tasks",
          ["Key", "Title", "Jira id", "Assigned", ""],
          tasks.map((task) => [
            task.key,
            task.title,
            task.jiraId,
            dateTime(task.createdAt),
            actionButton(
              "Complete",
              async () => {
                const answer = await tracker.completeTask({ taskId: task.taskId });
                refresh();
                return `Completed ${answer.task?.key ?? task.key}.`;
              },
              completed,
              { "aria-label": `Complete ${task.key}` },
            ),
          ]),
          "No open tasks.",
        ),
      ];
    });
    void load(done, async () => {
      const { tasks } = await tracker.listMyTasks({ status: TaskStatus.DONE, pageSize: 50 });
      return [h("h2", { id: "my-done-title" }, "Done"), doneTable(tasks)];
    });
  };

  onSubmit(
    form,
    async () => {
      const data = new FormData(form);
      const answer = await tracker.createTask({
        title: String(data.get("title")),
        jiraId: String(data.get("jiraId")),
        description: String(data.get("description")),
      });
      form.reset();
      refresh();
      const task = answer.task;
      return `Created ${task?.key}: “${task?.title}”, assigned to a random worker.`;
    },
    created,
  );

  append(main, [
    h("h1", {}, "My tasks"),
    context.account.role === Role.WORKER
      ? null
      : h("p", { class: "hint" }, "Only workers are assigned tasks; a task you create goes to a random worker."),
    form,
    list,
    done,
  ]);
  refresh();
}

function doneTable(tasks: Task[]): Child {
  return table(
    "My done tasks",
    ["Key", "Title", "Jira id", "Completed"],
    tasks.map((task) => [task.key, task.title, task.jiraId, dateTime(task.completedAt)]),
    "Nothing done yet.",
  );
}
