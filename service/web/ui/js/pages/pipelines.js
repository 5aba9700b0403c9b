// Pipelines: build one from module functions (options forms from their declared options), list
// and delete them, start a run over uploaded files, and watch the runs: jobs, logs as they
// arrive, output files to download (docs/pipelines.md).

import { act, card, errorSlot, field, formatBytes, h, prose, select, setOptions, showError } from "../dom.js";
import { optionsForm, specsFromOptions } from "../forms.js";
import { runsCard } from "../runs.js";
import { when } from "./tasks.js";

export const id = "pipelines";
export const title = "Pipelines";

// How often the shown page asks whether a pipeline or run was added (two small requests).
const POLL_MS = 4000;

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
  // Pipelines and runs other clients make appear without Refresh: while the page is shown, a
  // poll of one of each every POLL_MS lists again when the count or the newest changed. It
  // opens no stream: the page's streams follow the runs in progress.
  let polling = false;
  poll = async () => {
    if (polling || !runs.visible()) {
      return;
    }
    polling = true;
    try {
      const [p, r] = await Promise.all([app.api.pipelines({ limit: 1 }), app.api.runs({ limit: 1, offset: 0 })]);
      if (p.total !== state.pipelinesTotal) {
        await list.reload();
      }
      if (r.total !== runs.count()) {
        await runs.reload();
      }
    } catch {
      // The next poll or Refresh tries again.
    } finally {
      polling = false;
    }
  };
  app
    .listing("modules")
    .then((modules) => {
      state.listing = modules;
      builder.dispatchEvent(new Event("listing"));
      start.sync();
    })
    .catch((err) => showError(builder.querySelector("#pipeline-add-error"), err.message));
}

let poll = async () => {};
let timer = null;

export function show() {
  runsShown.show();
  refreshAll();
  timer ||= setInterval(() => poll(), POLL_MS);
}

export function hide() {
  runsShown.hide();
  clearInterval(timer);
  timer = null;
}

/* What tells pipelines of one name apart: the start of the id and when it was made. */
export function pipelineTag(pipeline) {
  return `${pipeline.id.slice(0, 8)}${pipeline.created ? ` · ${when(pipeline.created)}` : ""}`;
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
  const warning = h("p", { class: "warning", id: "pipeline-name-warning", role: "status" });
  const tasks = [];
  // A second pipeline of a name already taken is allowed (each has its own id) but easily
  // confused: the page says so while the name is typed, and once more when it is made.
  function sameName() {
    const wanted = name.value.trim();
    return state.pipelines.filter((p) => p.name === wanted);
  }
  function warn() {
    const same = sameName();
    warning.textContent = same.length
      ? `${same.length === 1 ? "A pipeline" : `${same.length} pipelines`} named ${name.value.trim()} already exist${same.length === 1 ? "s" : ""} (${same.map(pipelineTag).join("; ")}): creating makes another, told apart by its id and date.`
      : "";
  }
  name.addEventListener("input", warn);
  state.onPipelines = warn;
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
    fnHelp.replaceChildren(...prose(info.help || ""), types.length ? ` (reads ${types.map((t) => `.${t}`).join(", ")})` : "");
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
    warning,
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
  name.setAttribute("aria-describedby", `${name.getAttribute("aria-describedby")} ${warning.id}`);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    done.textContent = "";
    act(submit, error, async () => {
      if (!tasks.length) {
        throw new Error("Add at least one task");
      }
      const twins = sameName().length;
      const pipeline = await app.api.createPipeline(name.value.trim(), tasks);
      done.textContent = `Pipeline ${pipeline.name} created with ${pipeline.tasks.length} task${pipeline.tasks.length === 1 ? "" : "s"} (${pipelineTag(pipeline)})${twins ? `; ${twins + 1} pipelines now have this name` : ""}.`;
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
      " ",
      h("span", { class: "mono muted", title: pipeline.id }, pipelineTag(pipeline)),
      h("span", { class: "muted" }, ` ${pipeline.tasks.map((t) => `${t.module}.${t.function}`).join(" → ")}`),
      h("div", { class: "toolbar" }, run, remove),
      rowError,
    );
  }

  async function load() {
    const { pipelines, total: count } = await app.api.pipelines({ limit: 1000 });
    state.pipelines = pipelines;
    state.pipelinesTotal = count;
    state.onPipelines?.();
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
    setOptions(pipeline, state.pipelines.length ? state.pipelines.map((p) => [p.id, `${p.name} (${pipelineTag(p)})`]) : [["", "(build a pipeline first)"]]);
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
