// Tasks: the server's background work (?async=1: trainings, scores, predictions, module runs),
// the newest first, with status, progress and cancel. While the page is shown, every pending or
// running task in the list is followed through its Server-Sent Events (GET /task/{id}/events),
// so its bar and status move as the server reports them; the list is fetched again when one ends.

import { act, errorSlot, field, h, select, wideCard } from "../dom.js";
import { resultOf } from "../shown.js";
import { showProgress } from "../training.js";

export const id = "tasks";
export const title = "Tasks";

const STATUSES = ["PENDING", "RUNNING", "SUCCESS", "FAILURE", "CANCELLED"];
const KINDS = ["train", "accuracy", "score", "predict", "module"];
const ACTIVE = new Set(["PENDING", "RUNNING"]);
const PAGE = 50;
// Event streams this page holds open at once: a browser opens at most 6 connections to one
// server over HTTP/1.1 and each stream holds one, so more would stall the page's requests.
const FOLLOWED = 3;
// How often the shown page asks whether a task was added (one small request each time).
const POLL_MS = 4000;

let page = null;

export function mount(root, app) {
  page = tasksPage(app);
  root.append(h("p", { class: "lead" }, "Work the server runs in the background, the newest first."), h("div", { class: "grid" }, page.element));
  app.events.addEventListener("task", () => page.visible && page.reload());
}

let timer = null;

export function show() {
  page.visible = true;
  page.reload();
  timer ||= setInterval(page.poll, POLL_MS);
}

export function hide() {
  page.visible = false;
  page.unfollow();
  clearInterval(timer);
  timer = null;
}

function tasksPage(app) {
  const status = select({ id: "tasks-status" }, [["", "any"], ...STATUSES]);
  const kind = select({ id: "tasks-kind" }, [["", "any"], ...KINDS]);
  const refresh = h("button", { type: "button", id: "tasks-refresh" }, "Refresh");
  const error = errorSlot("tasks-error");
  const summary = h("p", { class: "muted", id: "tasks-summary", role: "status" });
  const body = h("tbody");
  const table = h(
    "table",
    { id: "tasks-table", class: "stack" },
    h("caption", { class: "visually-hidden" }, "Tasks, the newest first"),
    h("thead", {}, h("tr", {}, ["Task", "Kind", "Target", "Status", "Progress", "Created", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    body,
  );
  const detail = h("div", { id: "task-detail", "aria-live": "polite" });
  // task id → AbortController of its followed event stream.
  const followed = new Map();
  const view = { visible: false, reload, unfollow };

  function unfollow() {
    for (const controller of followed.values()) {
      controller.abort();
    }
    followed.clear();
  }

  function row(task) {
    const bar = h("progress", { "aria-label": `Progress of task ${task.task_id}`, max: 1, value: 0 });
    const message = h("small", { class: "muted" });
    const badge = h("span", { class: "badge" });
    const actions = h("div", { class: "row-actions" });
    const rowError = h("p", { class: "error", role: "alert", hidden: true });
    const cancel = h("button", { type: "button", class: "small danger", "aria-label": `Cancel task ${task.task_id}` }, "Cancel");
    const more = h("button", { type: "button", class: "small", "aria-label": `Details of task ${task.task_id}` }, "Details");
    const tr = h(
      "tr",
      { "data-task": task.task_id },
      h("td", { class: "mono", "data-label": "Task" }, task.task_id.slice(0, 8)),
      h("td", { "data-label": "Kind" }, task.kind),
      h("td", { class: "name", "data-label": "Target" }, task.target),
      h("td", { "data-label": "Status" }, badge),
      h("td", { class: "progress", "data-label": "Progress" }, h("div", {}, bar, message)),
      h("td", { "data-label": "Created" }, when(task.created)),
      h("td", {}, actions),
    );
    actions.append(more, cancel, rowError);

    function update(current) {
      tr.dataset.status = current.status;
      badge.className = `badge ${current.status.toLowerCase()}`;
      badge.textContent = current.status;
      cancel.hidden = !ACTIVE.has(current.status);
      if (current.status === "SUCCESS") {
        bar.max = 1;
        bar.value = 1;
      } else if (current.progress) {
        showProgress(bar, message, current.progress);
      } else if (current.status === "RUNNING") {
        bar.removeAttribute("value");
      }
      if (current.error) {
        message.textContent = current.error;
        message.className = "error";
      } else if (current.progress && current.progress.message) {
        message.textContent = current.progress.message;
      }
    }
    update(task);

    more.addEventListener("click", () => act(more, rowError, async () => showDetail(await app.api.task(task.task_id))));
    cancel.addEventListener("click", () =>
      act(cancel, rowError, async () => {
        update(await app.api.cancelTask(task.task_id));
      }),
    );
    if (ACTIVE.has(task.status) && view.visible && followed.size < FOLLOWED) {
      const controller = new AbortController();
      followed.set(task.task_id, controller);
      app.api
        .waitTask(task.task_id, {
          signal: controller.signal,
          onStatus: update,
          onProgress: (progress) => showProgress(bar, message, progress),
        })
        .then((finished) => {
          update(finished);
          followed.delete(task.task_id);
          // Another task may have started meanwhile: list again once this one is done.
          if (view.visible) {
            reload();
          }
        })
        .catch(() => {
          // Stopped following (the page was left) or the server went away: Refresh shows it.
          followed.delete(task.task_id);
        });
    }
    return tr;
  }

  function showDetail(task) {
    // Only what there is: a null here would be shown as the text "null".
    const parts = [
      h("h3", {}, `Task ${task.task_id}`),
      h("p", {}, `${task.kind} of ${task.target}: ${task.status}${task.ran_on ? `, ran on ${task.ran_on}` : ""}`),
      h("p", { class: "muted" }, `created ${when(task.created)}, started ${when(task.started) || "—"}, finished ${when(task.finished) || "—"}`),
      task.error ? h("p", { class: "error" }, task.error) : null,
      task.status === "SUCCESS" || task.result !== null ? resultOf(task.result) : null,
    ];
    detail.replaceChildren(...parts.filter(Boolean));
  }

  function filters() {
    const query = {};
    if (status.value) {
      query.status = status.value;
    }
    if (kind.value) {
      query.kind = kind.value;
    }
    return query;
  }

  // The newest task and the count the list shows: a poll that sees others lists again.
  let seen = "";
  const mark = (tasks, total) => `${total}/${tasks[0]?.task_id || ""}`;

  async function load() {
    const query = { limit: PAGE, ...filters() };
    const { tasks, total } = await app.api.tasks(query);
    seen = mark(tasks, total);
    unfollow();
    body.replaceChildren(...tasks.map(row));
    table.hidden = !tasks.length;
    summary.textContent = total
      ? `${total} task${total === 1 ? "" : "s"}${total > tasks.length ? `, the newest ${tasks.length} shown` : ""}.`
      : "No tasks yet: train a model on the Models page.";
  }

  function reload() {
    return act(refresh, error, load);
  }

  /* Tasks other clients start appear without Refresh: a poll of one task every POLL_MS while
   * the page is shown (no stream: the page's streams follow the tasks that run). */
  let polling = false;
  view.poll = async () => {
    if (!view.visible || polling || refresh.disabled) {
      return;
    }
    polling = true;
    try {
      const { tasks, total } = await app.api.tasks({ limit: 1, ...filters() });
      if (view.visible && mark(tasks, total) !== seen) {
        await reload();
      }
    } catch {
      // The next poll or Refresh tries again; a failed Refresh shows its error.
    } finally {
      polling = false;
    }
  };

  refresh.addEventListener("click", reload);
  status.addEventListener("change", reload);
  kind.addEventListener("change", reload);
  view.element = wideCard(
    "Tasks",
    h("div", { class: "row narrow" }, field("Status", status), field("Kind", kind)),
    h("div", { class: "toolbar" }, refresh, error),
    summary,
    h("div", { class: "scroll" }, table),
    detail,
  );
  return view;
}

export function when(iso) {
  if (!iso) {
    return "";
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
