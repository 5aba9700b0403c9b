// Models: configure from /list/models, train as a task with a live progress bar (and cancel), score with any scorer,
// predict from a form or over a source, and plot the predictions against the truth.

import { act, card, wideCard, errorSlot, field, h, newId, s, select, setOptions, showError } from "../dom.js";
import { optionsForm, pluginConfig, specsFromConfig } from "../forms.js";
import { confusion, looksLikeClasses, residuals, scatter } from "../plot.js";
import { trainWithProgress } from "../training.js";

export const id = "models";
export const title = "Models";

export function mount(root, app) {
  const model = select({ id: "model-ctx" }, []);
  const results = resultsCard(app);
  const view = { app, model, results };
  function sync() {
    const known = app.labels.list("model");
    setOptions(model, known.length ? known : [["", "(configure a model first)"]]);
    model.dispatchEvent(new Event("change"));
  }
  app.labels.addEventListener("change", sync);
  root.append(
    h("p", { class: "lead" }, "Configure a model, train it on a source, score it and look at its predictions."),
    h("div", { class: "grid" },
      configureCard(view),
      card("Use a model", field("Model", model, "the model that training, scoring and predicting below use"), trainPart(view), scorePart(view)),
      predictCard(view),
      results.element,
    ),
  );
  sync();
}

/* Checkboxes for the configured sources, with the first one ticked. */
function sourcePicker(app, name) {
  const group = h("fieldset", { class: "sources", id: `${name}-sources` }, h("legend", {}, "Sources"));
  const list = h("div", { class: "checks" });
  group.append(list);
  function sync() {
    const known = app.labels.list("source");
    const ticked = new Set([...list.querySelectorAll("input:checked")].map((i) => i.value));
    list.replaceChildren(
      ...(known.length
        ? known.map((ctx, i) => {
            const first = known.includes(app.recent.source) ? ctx === app.recent.source : i === 0;
            const box = h("input", { type: "checkbox", value: ctx, checked: ticked.size ? ticked.has(ctx) : first });
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

function trainPart({ app, model }) {
  const sources = sourcePicker(app, "train");
  const submit = h("button", { type: "button", id: "train-submit" }, "Train");
  const cancel = h("button", { type: "button", id: "train-cancel", class: "danger", hidden: true }, "Cancel training");
  const error = errorSlot("train-error");
  const bar = h("progress", { id: "train-progress", max: 1, value: 0, "aria-label": "Training progress" });
  const status = h("p", { id: "train-status", role: "status", class: "muted" }, "Not trained in this page yet.");
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

function format(value) {
  return typeof value === "number" ? String(Number(value.toPrecision(6))) : JSON.stringify(value);
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
  app.labels.addEventListener("change", syncSources);
  model.addEventListener("change", syncInputs);
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

function resultsCard() {
  const kind = select({ id: "plot-kind" }, [["auto", "Automatic"], ["regression", "Regression"], ["classification", "Classification"]], "auto");
  const summary = h("p", { id: "plot-summary", role: "status" }, "Predict over a source to see plots.");
  const score = h("p", { id: "plot-score", class: "muted" });
  const main = h("figure", { class: "plot", hidden: true }, s("svg", { id: "plot-main" }), h("figcaption", {}));
  const second = h("figure", { class: "plot", hidden: true }, s("svg", { id: "plot-residuals" }), h("figcaption", {}));
  const table = h("table", { id: "predictions-table" });
  let last = null;

  function draw() {
    if (!last) {
      return;
    }
    const { points, name } = last;
    const classes = kind.value === "auto" ? looksLikeClasses(points) : kind.value === "classification";
    main.hidden = false;
    if (classes) {
      confusion(main.querySelector("svg"), points, name);
      main.querySelector("figcaption").textContent = "Confusion matrix: rows are the true class, columns the predicted one.";
      second.hidden = true;
      const right = points.filter((p) => String(p.truth) === String(p.predicted)).length;
      last.stats = `${right} of ${points.length} predicted right (${((100 * right) / points.length).toFixed(1)} %)`;
    } else {
      scatter(main.querySelector("svg"), points, name);
      main.querySelector("figcaption").textContent = "Predicted against true value; a perfect model puts every point on the line y = x.";
      residuals(second.querySelector("svg"), points, name);
      second.querySelector("figcaption").textContent = "Residuals (true − predicted) against the prediction.";
      second.hidden = false;
      const mse = points.reduce((sum, p) => sum + (p.truth - p.predicted) ** 2, 0) / points.length;
      last.stats = `mean squared error over these records: ${format(mse)}`;
    }
    summary.textContent = `${points.length} record${points.length === 1 ? "" : "s"} plotted (${last.what}); ${last.stats}.`;
  }
  kind.addEventListener("change", draw);

  function renderTable(records, name) {
    const shown = records.slice(0, 500);
    table.replaceChildren(
      h("caption", {}, records.length > shown.length ? `The first ${shown.length} of ${records.length} predictions` : "Predictions"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "key"), h("th", { scope: "col" }, `true ${name}`), h("th", { scope: "col" }, `predicted ${name}`), h("th", { scope: "col" }, "confidence"))),
      h(
        "tbody",
        {},
        shown.map((r) => {
          const p = (r.prediction || {})[name] || {};
          return h("tr", { "data-key": r.key }, h("th", { scope: "row" }, r.key), h("td", {}, format((r.features || {})[name])), h("td", {}, format(p.value)), h("td", {}, p.confidence === undefined ? "" : format(p.confidence)));
        }),
      ),
    );
  }

  const plotAs = field("Plot as", kind, "automatic: a confusion matrix when predictions are classes, else a scatter");
  plotAs.classList.add("inline");
  const element = wideCard(
    "Predictions against the truth",
    plotAs,
    summary,
    score,
    h("div", { class: "plots" }, main, second),
    h("details", {}, h("summary", {}, "Table of predictions"), h("div", { class: "scroll" }, table)),
  );
  element.id = "results";
  return {
    element,
    setScore(text) {
      score.textContent = text;
    },
    show(records, configuredName, what) {
      const name = configuredName || Object.keys(records[0]?.prediction || {})[0] || "value";
      const points = records
        .filter((r) => r.prediction && r.prediction[name] && r.features && r.features[name] !== undefined)
        .map((r) => ({ key: r.key, truth: r.features[name], predicted: r.prediction[name].value }));
      renderTable(records, name);
      if (!points.length) {
        last = null;
        main.hidden = true;
        second.hidden = true;
        summary.textContent = `No record of ${what} has a true ${name} to compare with.`;
        return;
      }
      last = { points, name, what };
      draw();
    },
  };
}
