// The Models page's "Predictions against the truth": a scatter and residuals for a regressor,
// a confusion matrix for a classifier, and a table of every prediction.

import { field, h, s, select, wideCard } from "./dom.js";
import { confusion, looksLikeClasses, residuals, scatter } from "./plot.js";

export function format(value) {
  return typeof value === "number" ? String(Number(value.toPrecision(6))) : JSON.stringify(value);
}

export function resultsCard() {
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
