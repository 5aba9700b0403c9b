// Models: configure from /list/models, train as a task with a live progress bar (and cancel), score with any scorer,
// predict from a form or over a source, and plot the predictions against the truth.

import { act, card, errorSlot, field, h, newId, select, setOptions, showError } from "../dom.js";
import { optionsForm, pluginConfig, specsFromConfig } from "../forms.js";
import { when } from "../files.js";
import { format, resultsCard } from "../results.js";
import { trainWithProgress } from "../training.js";
import { versionsCard } from "../versions.js";

export const id = "models";
export const title = "Models";

export function mount(root, app) {
  const model = select({ id: "model-ctx" }, []);
  const state = h("p", { id: "model-state", role: "status" });
  const results = resultsCard(app);
  const view = { app, model, results, state };
  function sync() {
    const known = app.labels.list("model");
    setOptions(model, known.length ? known : [["", "(configure a model first)"]]);
    model.dispatchEvent(new Event("change"));
  }
  model.addEventListener("change", () => describeModel(view));
  app.labels.addEventListener("change", sync);
  root.append(
    h("p", { class: "lead" }, "Configure a model, train it on a source, score it and look at its predictions."),
    h("div", { class: "grid" },
      configureCard(view),
      card("Use a model", field("Model", model, "the model that training, scoring and predicting below use"), state, trainPart(view), scorePart(view)),
      predictCard(view),
      versionsCard(view),
      results.element,
    ),
  );
  sync();
}

/*
 * The model's state as the server knows it (GET /labels says whether it is trained, however it
 * was, and when and on what it last trained through the server) and what it reads.
 */
async function describeModel({ app, model, state }) {
  const ctx = model.value;
  const info = app.labels.get("model", ctx);
  if (!info) {
    state.textContent = "";
    return;
  }
  const features = featuresOf(info.config).map((f) => f.name);
  const reads = features.length ? ` It reads ${features.join(", ")}${predictedName(info.config) ? ` and predicts ${predictedName(info.config)}` : ""}.` : "";
  const said = info.trained === undefined ? "" : info.trained ? "Trained." : "Not trained yet: train it below.";
  state.dataset.trained = String(Boolean(info.trained));
  state.textContent = `${info.plugin} model. ${said}${reads}`;
  // The server's record of the context's last training, however it was asked for (this page,
  // another client, a synchronous or an async train); none after a restart or for a model that
  // was only loaded trained.
  const last = info.training;
  if (info.trained && last) {
    const on = last.sources.length ? ` on ${last.sources.join(", ")}` : "";
    state.textContent = `${info.plugin} model. Trained${on}, last at ${when(last.finished)}.${reads}`;
  }
}

/*
 * Checkboxes for the configured sources. Until the user ticks one, the ticked ones follow the
 * model: the sources whose records have every feature it needs (prefer()).
 */
function sourcePicker(app, name) {
  const group = h("fieldset", { class: "sources", id: `${name}-sources` }, h("legend", {}, "Sources"));
  const list = h("div", { class: "checks" });
  group.append(list);
  let preferred = null;
  let touched = false;
  list.addEventListener("change", () => {
    touched = true;
  });
  function sync() {
    const known = app.labels.list("source");
    const ticked = new Set([...list.querySelectorAll("input:checked")].map((i) => i.value));
    const wanted = touched ? ticked : new Set(preferred && preferred.length ? [preferred.includes(app.recent.source) ? app.recent.source : preferred[0]] : []);
    list.replaceChildren(
      ...(known.length
        ? known.map((ctx, i) => {
            const first = known.includes(app.recent.source) ? ctx === app.recent.source : i === 0;
            const box = h("input", { type: "checkbox", value: ctx, checked: wanted.size || touched ? wanted.has(ctx) : first });
            return field(ctx, box);
          })
        : [h("p", { class: "muted" }, "No sources yet: configure one on the Data page.")]),
    );
  }
  app.labels.addEventListener("change", sync);
  sync();
  return {
    element: group,
    chosen: () => [...list.querySelectorAll("input:checked")].map((i) => i.value),
    prefer(fits) {
      preferred = fits;
      sync();
    },
  };
}

function configureCard({ app, model }) {
  const plugin = select({ id: "model-plugin" }, []);
  const label = h("input", { type: "text", id: "model-label", value: "mymodel", required: true, autocomplete: "off", spellcheck: "false" });
  const holder = h("div");
  const submit = h("button", { type: "submit", id: "model-submit" }, "Configure model");
  const error = errorSlot("model-error");
  const done = h("p", { class: "ok", role: "status", id: "model-done" });
  let listing = {};
  let form = optionsForm([]);
  function build() {
    form = optionsForm(specsFromConfig(pluginConfig(listing[plugin.value], "model", plugin.value)), {
      legend: `${plugin.value} options`,
    });
    holder.replaceChildren(form.element);
  }
  plugin.addEventListener("change", build);
  const element = h(
    "form",
    { id: "model-form", novalidate: true },
    field("Model type", plugin, "from /list/models"),
    field("Name", label, "the label (and context label) of this model"),
    holder,
    h("div", { class: "toolbar" }, submit, error),
    done,
  );
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    done.textContent = "";
    act(submit, error, async () => {
      const config = form.values();
      const name = label.value.trim();
      await app.api.configure("model", plugin.value, name, config);
      await app.api.context("model", name, name);
      app.labels.add("model", name, { plugin: plugin.value, config });
      model.value = name;
      model.dispatchEvent(new Event("change"));
      done.textContent = `Model ${name} is ready to train.`;
    });
  });
  app
    .listing("models")
    .then((models) => {
      listing = models;
      const names = Object.keys(models).filter((name) => !models[name].unavailable);
      setOptions(plugin, names, names.includes("slr") ? "slr" : names[0]);
      build();
    })
    .catch((err) => showError(error, err.message));
  return card("Configure a model", element);
}

/* The names a model reads (and, with truth, the one it predicts too). */
function namesOf(app, ctx, truth) {
  const config = app.labels.get("model", ctx)?.config;
  const names = featuresOf(config).map((f) => f.name);
  const predicted = predictedName(config);
  return truth && predicted ? [...names, predicted] : names;
}

/* Tick, in picker, the sources that have what model needs, whenever the model changes. */
function followModel(app, model, picker) {
  model.addEventListener("change", () => {
    const names = namesOf(app, model.value, true);
    if (names.length) {
      app.labels.sourcesWith(names).then(picker.prefer, () => {});
    }
  });
}

function trainPart({ app, model }) {
  const sources = sourcePicker(app, "train");
  followModel(app, model, sources);
  const submit = h("button", { type: "button", id: "train-submit" }, "Train");
  const cancel = h("button", { type: "button", id: "train-cancel", class: "danger", hidden: true }, "Cancel training");
  const error = errorSlot("train-error");
  const bar = h("progress", { id: "train-progress", max: 1, value: 0, "aria-label": "Training progress" });
  const status = h("p", { id: "train-status", role: "status", class: "muted" });
  let taskId = null;
  cancel.addEventListener("click", () =>
    act(cancel, error, async () => {
      if (taskId) {
        await app.api.cancelTask(taskId);
      }
    }),
  );
  submit.addEventListener("click", () => {
    bar.dataset.state = "running";
    act(submit, error, async () => {
      const chosen = sources.chosen();
      if (!model.value) {
        throw new Error("Configure a model first");
      }
      if (!chosen.length) {
        throw new Error("Choose at least one source to train on");
      }
      try {
        const task = await trainWithProgress(app.api, model.value, chosen, {
          bar,
          status,
          onTask(id) {
            taskId = id;
            cancel.hidden = false;
            bar.dataset.task = id;
            app.events.dispatchEvent(new CustomEvent("task", { detail: id }));
          },
        });
        app.events.dispatchEvent(new CustomEvent("task", { detail: task.task_id }));
      } finally {
        taskId = null;
        cancel.hidden = true;
      }
      bar.dataset.state = "done";
      status.textContent = `Trained ${model.value} on ${chosen.join(", ")}.`;
      // The server now says the model is trained: the state above follows.
      app.labels.refresh().catch(() => {});
      return true;
    }).then((ok) => {
      if (!ok) {
        bar.max = 1;
        bar.value = 0;
        bar.dataset.state = error.textContent === "Training was cancelled" ? "cancelled" : "error";
        status.textContent = bar.dataset.state === "cancelled" ? "Training cancelled." : "Training failed.";
      }
    });
  });
  return h(
    "div",
    { class: "part" },
    h("h3", {}, "Train"),
    sources.element,
    h("div", { class: "toolbar" }, submit, cancel, error),
    bar,
    status,
  );
}

function scorePart({ app, model, results }) {
  const scorer = select({ id: "score-scorer" }, []);
  const sources = sourcePicker(app, "score");
  followModel(app, model, sources);
  const submit = h("button", { type: "button", id: "score-submit" }, "Score");
  const error = errorSlot("score-error");
  const out = h("output", { id: "score-value", for: scorer.id });
  app
    .listing("scorers")
    .then((scorers) => {
      const names = Object.keys(scorers).filter((name) => !scorers[name].unavailable);
      setOptions(scorer, names.map((n) => [n, `${n}${scorers[n].description ? ` — ${scorers[n].description}` : ""}`]), "mse");
    })
    .catch((err) => showError(error, err.message));
  submit.addEventListener("click", () =>
    act(submit, error, async () => {
      const chosen = sources.chosen();
      if (!chosen.length) {
        throw new Error("Choose at least one source to score on");
      }
      // Scorers are configured on demand under their own name: they hold no state.
      await app.api.configure("scorer", scorer.value, scorer.value, {});
      await app.api.context("scorer", scorer.value, scorer.value);
      const value = await app.api.score(scorer.value, model.value, chosen);
      out.textContent = `${scorer.value} = ${format(value)}`;
      results.setScore(`${scorer.value} of ${model.value} on ${chosen.join(", ")}: ${format(value)}`);
    }),
  );
  return h(
    "div",
    { class: "part" },
    h("h3", {}, "Score"),
    field("Scorer", scorer, "from /list/scorers"),
    sources.element,
    h("div", { class: "toolbar" }, submit, error),
    out,
  );
}

/* The features a model was configured with: [{name, dtype}] from "Years:int:1" or objects. */
function featuresOf(config) {
  const raw = config && config.features;
  const list = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(",") : [];
  return list.map((f) => {
    if (typeof f === "string") {
      const [name, dtype = "float"] = f.trim().split(":");
      return { name, dtype };
    }
    return { name: f.name, dtype: f.dtype || "float" };
  });
}

function predictedName(config) {
  const raw = config && config.predict;
  if (typeof raw === "string") {
    return raw.split(":")[0].trim();
  }
  return raw && raw.name ? raw.name : null;
}

function predictCard({ app, model, results }) {
  const source = select({ id: "predict-source" }, []);
  const overSource = h("button", { type: "button", id: "predict-run" }, "Predict every record");
  const sourceError = errorSlot("predict-error");
  const count = h("p", { class: "muted", id: "predict-count", role: "status" });
  const inputs = h("div", { class: "row", id: "predict-inputs" });
  const one = h("button", { type: "submit", id: "predict-one" }, "Predict");
  const oneError = errorSlot("predict-one-error");
  const answer = h("output", { id: "predict-answer" });
  const oneForm = h("form", { id: "predict-form", novalidate: true }, inputs, h("div", { class: "toolbar" }, one, oneError), answer);

  function syncSources() {
    const known = app.labels.list("source");
    // A source configured since the last sync is chosen; otherwise the choice stays.
    const fresh = known.includes(app.recent.source) && app.recent.source !== source.dataset.recent;
    setOptions(source, known.length ? known : [["", "(configure a source first)"]], fresh ? app.recent.source : source.value);
    if (fresh) {
      source.dataset.recent = app.recent.source;
    }
  }
  function syncInputs() {
    const info = app.labels.get("model", model.value);
    const features = featuresOf(info && info.config);
    inputs.replaceChildren(
      ...(features.length
        ? features.map((f) => {
            const numeric = f.dtype === "int" || f.dtype === "float";
            const input = h("input", { id: newId("feature"), name: f.name, type: numeric ? "number" : "text", step: "any", required: true });
            return field(`${f.name} (${f.dtype})`, input);
          })
        : [h("p", { class: "muted" }, "Configure a model to predict from a form.")]),
    );
    one.disabled = !features.length;
  }
  let touched = false;
  source.addEventListener("change", () => {
    touched = true;
  });
  // Until the user picks one, the source offered is one with the model's features (and its truth).
  function fitSource() {
    const ctx = model.value;
    if (touched || !ctx) {
      return;
    }
    const withTruth = app.labels.sourcesWith(namesOf(app, ctx, true));
    const withFeatures = app.labels.sourcesWith(namesOf(app, ctx, false));
    Promise.all([withTruth, withFeatures]).then(([best, fit]) => {
      const chosen = [...best, ...fit][0];
      if (!touched && model.value === ctx && chosen && !best.includes(source.value)) {
        source.value = chosen;
      }
    }, () => {});
  }
  app.labels.addEventListener("change", syncSources);
  model.addEventListener("change", syncInputs);
  model.addEventListener("change", fitSource);
  syncSources();
  syncInputs();

  overSource.addEventListener("click", () =>
    act(overSource, sourceError, async () => {
      const info = app.labels.get("model", model.value);
      const records = [];
      count.textContent = "Predicting…";
      for await (const record of app.api.predictSource(model.value, source.value, 200)) {
        records.push(record);
        if (records.length % 1000 === 0) {
          count.textContent = `Predicted ${records.length} records…`;
        }
      }
      count.textContent = `Predicted ${records.length} record${records.length === 1 ? "" : "s"} of ${source.value}.`;
      results.show(records, predictedName(info && info.config), `${model.value} on ${source.value}`);
    }).then(() => undefined),
  );
  oneForm.addEventListener("submit", (event) => {
    event.preventDefault();
    act(one, oneError, async () => {
      const features = {};
      for (const input of inputs.querySelectorAll("input")) {
        if (input.value.trim() === "") {
          input.focus();
          throw new Error(`${input.name}: enter a value`);
        }
        features[input.name] = input.type === "number" ? Number(input.value) : input.value;
      }
      const predicted = await app.api.predict(model.value, { input: { features } });
      const record = predicted.input || Object.values(predicted)[0];
      answer.textContent = Object.entries(record.prediction || {})
        .map(([name, p]) => `${name}: ${format(p.value)} (confidence ${format(p.confidence)})`)
        .join("; ");
    });
  });
  return card(
    "Predict",
    h("h3", {}, "Over a source"),
    field("Source", source),
    h("div", { class: "toolbar" }, overSource, sourceError),
    count,
    h("h3", {}, "From a form"),
    oneForm,
  );
}

