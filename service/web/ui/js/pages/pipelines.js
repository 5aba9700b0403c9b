// Pipelines: build one from module functions (options forms from their declared options), list
// and delete them, start a run over uploaded files, and watch the runs: jobs, logs as they
// arrive, output files to download (docs/pipelines.md).

import { act, card, errorSlot, field, formatBytes, h, select, setOptions, showError, wideCard } from "../dom.js";
import { optionsForm, specsFromOptions } from "../forms.js";
import { runView } from "../runs.js";

export const id = "pipelines";
export const title = "Pipelines";

// Runs shown, the newest first.
const RUNS_SHOWN = 20;
// Run event streams held open at once (see follow() below).
const STREAMS = 3;

let refreshAll = () => {};
let runsShown = null;

export function mount(root, app) {
  const state = { app, listing: {}, pipelines: [], views: new Map() };
  const runs = runsCard(state);
  const start = startCard(state, runs);
  const list = pipelinesCard(state, start);
  const builder = builderCard(state, list);
  root.append(
    h("p", { class: "lead" }, "A pipeline runs module functions one after another over uploaded files; each function's outputs feed the next."),
    h("div", { class: "grid" }, builder, list.element, start.element, runs.element),
  );
  refreshAll = () => Promise.all([list.reload(), runs.reload()]);
  runsShown = runs;
  app
    .listing("modules")
    .then((modules) => {
      state.listing = modules;
      builder.dispatchEvent(new Event("listing"));
      start.sync();
    })
    .catch((err) => showError(builder.querySelector("#pipeline-add-error"), err.message));
}

export function show() {
  runsShown.show();
  refreshAll();
}

export function hide() {
  runsShown.hide();
}

/* The plugin of a module choice: "ctx:LABEL" (an open context) or "plugin:NAME". */
function pluginOf(app, choice) {
  const [type, name] = [choice.slice(0, choice.indexOf(":")), choice.slice(choice.indexOf(":") + 1)];
  return type === "ctx" ? app.labels.get("module", name)?.plugin : name;
}

function builderCard(state) {
  const { app } = state;
  const name = h("input", { type: "text", id: "pipeline-name", value: "prepare", required: true, autocomplete: "off", spellcheck: "false" });
  const module = select({ id: "pipeline-module" }, []);
  const fn = select({ id: "pipeline-function" }, []);
  const fnHelp = h("p", { class: "muted", id: "pipeline-function-about" });
  const optionsHolder = h("div");
  const add = h("button", { type: "button", id: "pipeline-add" }, "Add task");
  const addError = errorSlot("pipeline-add-error");
  const steps = h("ol", { id: "pipeline-tasks", class: "steps" });
  const empty = h("p", { class: "muted", id: "pipeline-tasks-empty" }, "No tasks yet: add one or more above.");
  const submit = h("button", { type: "submit", id: "pipeline-submit" }, "Create pipeline");
  const error = errorSlot("pipeline-error");
  const done = h("p", { class: "ok", role: "status", id: "pipeline-done" });
  const tasks = [];
  let options = optionsForm([]);

  const functions = () => (state.listing[pluginOf(app, module.value)] || {}).functions || {};

  function syncModules() {
    const contexts = app.labels.list("module");
    const plugins = Object.keys(state.listing).filter((n) => !state.listing[n].unavailable && !contexts.includes(n));
    setOptions(module, [
      ...contexts.map((ctx) => [`ctx:${ctx}`, `${ctx} (${app.labels.get("module", ctx).plugin}, configured)`]),
      ...plugins.map((n) => [`plugin:${n}`, `${n} (configured on use, defaults)`]),
    ]);
    buildFunctions();
  }

  function buildFunctions() {
    const names = Object.keys(functions());
    setOptions(fn, names, names.includes(fn.value) ? fn.value : names[0]);
    buildOptions();
  }

  function buildOptions() {
    const info = functions()[fn.value] || {};
    const types = [info.expected_filetype, ...(info.optional_filetypes || [])].filter(Boolean);
    fnHelp.textContent = `${info.help || ""}${types.length ? ` (reads ${types.map((t) => `.${t}`).join(", ")})` : ""}`;
    options = optionsForm(specsFromOptions(info.options), { legend: `${fn.value || "function"} options`, hideEmpty: true });
    optionsHolder.replaceChildren(options.element);
  }

  function renderSteps() {
    empty.hidden = tasks.length > 0;
    steps.replaceChildren(
      ...tasks.map((task, index) => {
        const remove = h("button", { type: "button", class: "small danger", "aria-label": `Remove task ${index + 1}, ${task.module}.${task.function}` }, "Remove");
        remove.addEventListener("click", () => {
          tasks.splice(index, 1);
          renderSteps();
          add.focus();
        });
        const shown = Object.keys(task.options).length ? ` ${JSON.stringify(task.options)}` : "";
        return h("li", { "data-function": task.function }, h("span", { class: "name" }, `${task.module}.${task.function}${shown}`), remove);
      }),
    );
  }

  add.addEventListener("click", () =>
    act(add, addError, async () => {
      if (!fn.value) {
        throw new Error("Choose a module function first");
      }
      const values = options.values();
      const choice = module.value;
      let ctx = choice.slice(choice.indexOf(":") + 1);
      if (choice.startsWith("plugin:")) {
        // A module nobody configured yet: configure it under its own name, with its defaults.
        await app.api.configure("module", ctx, ctx, {});
        await app.api.context("module", ctx, ctx);
        await app.labels.add("module", ctx, { label: ctx, plugin: ctx, config: {} });
        module.value = `ctx:${ctx}`;
      }
      tasks.push({ module: ctx, function: fn.value, options: values });
      renderSteps();
    }),
  );

  const form = h(
    "form",
    { id: "pipeline-form", novalidate: true },
    field("Name", name, "1 to 200 characters"),
    h("fieldset", { class: "options" },
      h("legend", {}, "Add a task"),
      field("Module", module, "an open module context, or a module from /list/modules"),
      field("Function", fn),
      fnHelp,
      optionsHolder,
      h("div", { class: "toolbar" }, add, addError),
    ),
    h("h3", { id: "pipeline-tasks-title" }, "Tasks, in order"),
    empty,
    steps,
    h("div", { class: "toolbar" }, submit, error),
    done,
  );
  steps.setAttribute("aria-labelledby", "pipeline-tasks-title");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    done.textContent = "";
    act(submit, error, async () => {
      if (!tasks.length) {
        throw new Error("Add at least one task");
      }
      const pipeline = await app.api.createPipeline(name.value.trim(), tasks);
      done.textContent = `Pipeline ${pipeline.name} created with ${pipeline.tasks.length} task${pipeline.tasks.length === 1 ? "" : "s"}.`;
      tasks.splice(0);
      renderSteps();
      await refreshAll();
    });
  });
  module.addEventListener("change", buildFunctions);
  fn.addEventListener("change", buildOptions);
  app.labels.addEventListener("change", () => {
    const before = module.value;
    syncModules();
    if ([...module.options].some((o) => o.value === before)) {
      module.value = before;
      buildFunctions();
    }
  });
  const element = card("Build a pipeline", form);
  element.id = "pipeline-builder";
  element.addEventListener("listing", syncModules);
  renderSteps();
  return element;
}

function pipelinesCard(state, start) {
  const { app } = state;
  const body = h("ul", { id: "pipelines-list", class: "pipelines" });
  const refresh = h("button", { type: "button", id: "pipelines-refresh" }, "Refresh");
  const error = errorSlot("pipelines-error");
  const total = h("p", { class: "muted", id: "pipelines-total", role: "status" });

  function item(pipeline) {
    const rowError = h("p", { class: "error", role: "alert", hidden: true });
    const run = h("button", { type: "button", class: "small", "aria-label": `Run pipeline ${pipeline.name}` }, "Run…");
    const remove = h("button", { type: "button", class: "small danger", "aria-label": `Delete pipeline ${pipeline.name}` }, "Delete");
    run.addEventListener("click", () => start.choose(pipeline.id));
    remove.addEventListener("click", () =>
      act(remove, rowError, async () => {
        await app.api.deletePipeline(pipeline.id);
        await reload();
      }),
    );
    return h(
      "li",
      { "data-pipeline": pipeline.id },
      h("strong", {}, pipeline.name),
      h("span", { class: "muted" }, ` ${pipeline.tasks.map((t) => `${t.module}.${t.function}`).join(" → ")}`),
      h("div", { class: "toolbar" }, run, remove),
      rowError,
    );
  }

  async function load() {
    const { pipelines, total: count } = await app.api.pipelines({ limit: 1000 });
    state.pipelines = pipelines;
    body.replaceChildren(...pipelines.map(item));
    total.textContent = count ? `${count} pipeline${count === 1 ? "" : "s"}.` : "No pipelines yet: build one.";
    start.sync();
  }

  function reload() {
    return act(refresh, error, load);
  }
  refresh.addEventListener("click", reload);
  return { element: card("Pipelines", h("div", { class: "toolbar" }, refresh, error), total, body), reload };
}

function startCard(state, runs) {
  const { app } = state;
  const pipeline = select({ id: "run-pipeline" }, []);
  const files = h("fieldset", { class: "files", id: "run-files" }, h("legend", {}, "Input files"));
  const submit = h("button", { type: "button", id: "run-start" }, "Start run");
  const error = errorSlot("run-error");

  function firstFunction() {
    const chosen = state.pipelines.find((p) => p.id === pipeline.value);
    const task = chosen && chosen.tasks[0];
    if (!task) {
      return {};
    }
    const plugin = app.labels.get("module", task.module)?.plugin || task.module;
    return ((state.listing[plugin] || {}).functions || {})[task.function] || {};
  }

  function syncFiles() {
    const info = firstFunction();
    const types = [info.expected_filetype, ...(info.optional_filetypes || [])].filter(Boolean);
    const ticked = new Set([...files.querySelectorAll("input:checked")].map((i) => i.value));
    const fit = app.files.filter((f) => !types.length || types.some((t) => f.filename.endsWith(`.${t}`)));
    files.replaceChildren(
      h("legend", {}, "Input files"),
      ...(fit.length
        ? fit.map((f) => field(`${f.filename} (${formatBytes(f.size)})`, h("input", { type: "checkbox", value: f.filename, checked: ticked.has(f.filename) })))
        : [h("p", { class: "muted" }, `No ${types.map((t) => `.${t}`).join(" or ")} files uploaded yet.`)]),
    );
  }

  function sync() {
    setOptions(pipeline, state.pipelines.length ? state.pipelines.map((p) => [p.id, p.name]) : [["", "(build a pipeline first)"]]);
    submit.disabled = !state.pipelines.length;
    syncFiles();
  }

  submit.addEventListener("click", () =>
    act(submit, error, async () => {
      const chosen = [...files.querySelectorAll("input:checked")].map((i) => i.value);
      if (!chosen.length) {
        throw new Error("Choose at least one input file");
      }
      const run = await app.api.startRun(pipeline.value, chosen);
      runs.add(run);
    }),
  );
  pipeline.addEventListener("change", syncFiles);
  app.events.addEventListener("files", syncFiles);
  const element = card("Start a run", field("Pipeline", pipeline), files, h("div", { class: "toolbar" }, submit, error));
  return {
    element,
    sync,
    choose(id) {
      pipeline.value = id;
      syncFiles();
      pipeline.focus();
    },
  };
}

function runsCard(state) {
  const { app, views } = state;
  const list = h("div", { id: "runs-list", "aria-live": "polite" });
  const refresh = h("button", { type: "button", id: "runs-refresh" }, "Refresh");
  const error = errorSlot("runs-error");
  const total = h("p", { class: "muted", id: "runs-total", role: "status" });
  const card = { visible: false };

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
