// One pipeline run on the page: its status, a table of its jobs, each job's log as the lines
// arrive and its output files as links. A run in progress is followed through
// GET /runs/{id}/events (read by api.js with fetch, so -auth token's header goes with it).

import { act, errorSlot, formatBytes, h, saveBlob, wideCard } from "./dom.js";

const ENDED = new Set(["FINISHED", "FAILED", "CANCELLED"]);
// Runs shown, the newest first.
const RUNS_SHOWN = 20;
// Run event streams held open at once (see follow() below).
const STREAMS = 3;

/* A link to a file of the upload dir that downloads it through the client (which sends the
 * token), so it works under -auth token too; the href is the file's address all the same. */
export function fileLink(app, name, errorSlot) {
  const path = String(name).split("/").map(encodeURIComponent).join("/");
  const base = name.split("/").pop();
  // The name inside its folder: every output of a job shares outputs/run-ID/job-N/.
  const link = h("a", { href: `${app.api.endpoint}/service/files/${path}`, download: base, title: name }, base);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    act([], errorSlot, async () => saveBlob(await app.api.download(name), base));
  });
  return link;
}

/* An <article> for run, kept up to date; .follow() streams its events until it ends. */
export function runView(app, run, { pipelineName = "" } = {}) {
  const badge = h("span", { class: "badge" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const cancel = h("button", { type: "button", class: "small danger", "aria-label": `Cancel run ${run.id}` }, "Cancel run");
  const retry = h("button", { type: "button", class: "small", "aria-label": `Retry run ${run.id}` }, "Retry");
  const summary = h("p", { class: "muted" });
  const body = h("tbody");
  const jobs = h(
    "table",
    { class: "jobs stack" },
    h("caption", { class: "visually-hidden" }, `Jobs of run ${run.id}`),
    h("thead", {}, h("tr", {}, ["#", "Function", "Status", "Outputs", "Log"].map((t) => h("th", { scope: "col" }, t)))),
    body,
  );
  const rows = new Map();
  const element = h(
    "article",
    { class: "run", "data-run": run.id },
    h("h3", {}, `Run ${run.id.slice(0, 8)}`, pipelineName ? ` of ${pipelineName}` : "", " ", badge),
    summary,
    h("div", { class: "toolbar" }, cancel, retry),
    error,
    h("div", { class: "scroll" }, jobs),
  );
  let current = run;
  let following = null;
  let stopper = null;

  function jobRow(job) {
    if (!rows.has(job.task)) {
      const status = h("span", { class: "badge" });
      const outputs = h("ul", { class: "outputs" });
      const log = h("pre", { class: "log", role: "log", tabindex: "0", "aria-label": `Log of job ${job.task}` });
      const tr = h(
        "tr",
        { "data-job": job.id, "data-task": String(job.task) },
        h("td", { "data-label": "#" }, String(job.task)),
        h("td", { "data-label": "Function" }, job.function),
        h("td", { "data-label": "Status" }, status),
        h("td", { "data-label": "Outputs" }, outputs),
        h("td", { class: "log-cell", "data-label": "Log" }, log),
      );
      body.append(tr);
      rows.set(job.task, { tr, status, outputs, log, lines: 0 });
    }
    return rows.get(job.task);
  }

  function showJob(job) {
    const row = jobRow(job);
    row.tr.dataset.status = job.status;
    row.status.className = `badge ${job.status.toLowerCase()}`;
    row.status.textContent = job.status;
    row.status.title = job.error || job.ran_on || "";
    const items = (job.output_files || []).map((f) =>
      h("li", { "data-file": f.filename }, fileLink(app, f.filename, error), h("span", { class: "muted" }, ` ${formatBytes(f.size)}`)),
    );
    if (job.error) {
      items.push(h("li", { class: "error" }, job.error));
    }
    row.outputs.replaceChildren(...items);
    // The job's stored log (a late reader's catch-up); lines that arrived live are already in.
    const logs = job.logs || [];
    if (logs.length > row.lines) {
      row.log.textContent = logs.join("\n");
      row.lines = logs.length;
    }
  }

  function addLog({ task, line }) {
    const row = rows.get(task);
    if (row) {
      row.log.textContent += `${row.lines ? "\n" : ""}${line}`;
      row.lines += 1;
      row.log.scrollTop = row.log.scrollHeight;
    }
  }

  function show(next) {
    current = next;
    element.dataset.status = next.status;
    badge.className = `badge ${next.status.toLowerCase()}`;
    badge.textContent = next.status;
    const finished = (next.jobs || []).filter((j) => j.status === "FINISHED").length;
    summary.textContent = `${(next.files || []).join(", ")} · ${finished} of ${(next.jobs || []).length} jobs finished${next.error ? ` · ${next.error}` : ""}`;
    cancel.hidden = ENDED.has(next.status);
    retry.hidden = !(next.status === "FAILED" || next.status === "CANCELLED");
    for (const job of next.jobs || []) {
      showJob(job);
    }
  }

  /* Follow the run's events until it ends (resolves to true) or stop() is called (false);
   * a run that has ended already has nothing to follow (null). */
  function follow() {
    if (following || ENDED.has(current.status)) {
      return following;
    }
    stopper = new AbortController();
    const onEvent = (event, data) => {
        if (event === "status") {
          show(data);
        } else if (event === "job") {
          showJob(data);
          const jobs = (current.jobs || []).map((j) => (j.task === data.task ? data : j));
          show({ ...current, jobs });
        } else if (event === "log") {
          addLog(data);
        }
    };
    const mine = app.api
      .followRunEvents(current.id, { onEvent, signal: stopper.signal })
      .then(
        () => true,
        (err) => {
          if (err && err.name !== "AbortError") {
            error.textContent = `Stopped following the run: ${err.message}`;
            error.hidden = false;
          }
          return false;
        },
      )
      .finally(() => {
        if (following === mine) {
          following = null;
          stopper = null;
        }
      });
    following = mine;
    return following;
  }

  cancel.addEventListener("click", () => act(cancel, error, async () => show(await app.api.cancelRun(current.id))));
  retry.addEventListener("click", () =>
    act(retry, error, async () => {
      show(await app.api.retryRun(current.id));
      follow();
    }),
  );
  show(run);
  return {
    element,
    follow,
    /* Stop following (the run goes on); follow() again later picks it up where it is then. */
    stop() {
      stopper?.abort();
      following = null;
      stopper = null;
    },
    get following() {
      return following !== null;
    },
    get ended() {
      return ENDED.has(current.status);
    },
    /* The run as a listing shows it; the events of a followed run are newer, and win. */
    refresh(next) {
      if (!following) {
        show(next);
      }
    },
  };
}

/* The Pipelines page's Runs card: the newest runs, those in progress followed. */
export function runsCard(state) {
  const { app, views } = state;
  const list = h("div", { id: "runs-list", "aria-live": "polite" });
  const refresh = h("button", { type: "button", id: "runs-refresh" }, "Refresh");
  const error = errorSlot("runs-error");
  const total = h("p", { class: "muted", id: "runs-total", role: "status" });
  const card = { visible: false, count: -1 };

  function nameOf(run) {
    return state.pipelines.find((p) => p.id === run.pipeline)?.name || "";
  }

  function viewOf(run) {
    if (views.has(run.id)) {
      views.get(run.id).refresh(run);
    } else {
      views.set(run.id, runView(app, run, { pipelineName: nameOf(run) }));
    }
    return views.get(run.id);
  }

  /* Follow view's run; at most STREAMS at once (a browser opens only 6 connections to one
   * server over HTTP/1.1, and each stream holds one), the newest first. */
  function follow(view) {
    const followed = [...views.values()].filter((v) => v.following);
    if (view.ended || view.following || followed.length >= STREAMS) {
      return;
    }
    view.follow()?.then((ended) => {
      if (ended) {
        app.refreshFiles().catch(() => {});
        // A run that waited for a stream is picked up now.
        if (card.visible) {
          reload();
        }
      }
    });
  }

  async function load() {
    const { total: count } = await app.api.runs({ limit: 1 });
    card.count = count;
    const { runs } = await app.api.runs({ limit: RUNS_SHOWN, offset: Math.max(0, count - RUNS_SHOWN) });
    const shown = runs.reverse().map(viewOf);
    list.replaceChildren(...shown.map((view) => view.element));
    shown.forEach(follow);
    // Views of runs no longer shown are dropped.
    const kept = new Set(runs.map((run) => run.id));
    for (const [id, view] of views) {
      if (!kept.has(id) && !view.element.isConnected) {
        view.stop();
        views.delete(id);
      }
    }
    total.textContent = count
      ? `${count} run${count === 1 ? "" : "s"}${count > RUNS_SHOWN ? `, the newest ${RUNS_SHOWN} shown` : ""}.`
      : "No runs yet: start one.";
  }

  function reload() {
    return act(refresh, error, load);
  }
  refresh.addEventListener("click", reload);
  const element = wideCard("Runs", h("div", { class: "toolbar" }, refresh, error), total, list);
  element.id = "runs";
  return {
    element,
    reload,
    visible: () => card.visible,
    count: () => card.count,
    show() {
      card.visible = true;
    },
    /* Leaving the page closes its streams; coming back lists the runs as they are then. */
    hide() {
      card.visible = false;
      for (const view of views.values()) {
        view.stop();
      }
    },
    add(run) {
      const view = viewOf(run);
      list.prepend(view.element);
      // The run just started is the one to watch: it takes a stream from the oldest followed.
      const followed = [...views.values()].filter((v) => v.following && v !== view);
      if (followed.length >= STREAMS) {
        followed.at(-1).stop();
      }
      total.textContent = "";
      view.element.scrollIntoView({ block: "nearest" });
      follow(view);
    },
  };
}
