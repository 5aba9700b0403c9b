// Results shown where people look: a task's result as a message or a table, a describe's
// statistics as a table, an evasion's success rate.

import { h } from "./dom.js";

const ROWS = 50;

function scalar(value) {
  if (value === null || value === undefined) {
    return "—";
  }
  if (typeof value === "number") {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function isPlain(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function keyValues(object, caption) {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "result" },
      h("caption", {}, caption),
      h("tbody", {}, Object.entries(object).map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, scalar(value))))),
    ),
  );
}

function rowsTable(rows, caption) {
  const shown = rows.slice(0, ROWS);
  const columns = [...new Set(shown.flatMap((r) => (isPlain(r) ? Object.keys(r) : ["value"])))];
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "result" },
      h("caption", {}, rows.length > shown.length ? `${caption}: the first ${shown.length} of ${rows.length}` : caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, shown.map((r) => h("tr", {}, columns.map((c) => h("td", {}, scalar(isPlain(r) ? r[c] : r)))))),
    ),
  );
}

/*
 * A task's result: {"error": null} (what a training answers) is "Finished without error";
 * records (predictions) a table of key and prediction; other objects a table of name and value.
 */
export function resultOf(result) {
  const box = h("div", { class: "task-result", id: "task-result" });
  if (result === null || result === undefined || (isPlain(result) && Object.keys(result).length === 1 && result.error === null)) {
    box.append(h("p", { class: "ok" }, "Finished without error."));
    return box;
  }
  if (!isPlain(result) && !Array.isArray(result)) {
    box.append(h("p", {}, `Result: ${scalar(result)}`));
    return box;
  }
  if (Array.isArray(result)) {
    box.append(rowsTable(result, "Result"));
    return box;
  }
  if (isPlain(result.records)) {
    const rows = Object.values(result.records).map((record) => {
      const row = { key: record.key };
      for (const [name, p] of Object.entries(record.prediction || {})) {
        row[name] = p && typeof p === "object" ? p.value : p;
        if (p && p.confidence !== undefined) {
          row[`${name} confidence`] = p.confidence;
        }
      }
      return row;
    });
    box.append(rowsTable(rows, "Predictions"));
    return box;
  }
  const simple = Object.fromEntries(Object.entries(result).filter(([key, value]) => !(key === "error" && value === null)));
  box.append(keyValues(simple, "Result"));
  return box;
}

/* dataset.describe's JSON ({file, rows, columns: {name: {stat: value}}}) as one table: a row
 * per column, a column per statistic. */
export function describeTable(summary) {
  const columns = Object.entries(summary.columns || {});
  const stats = [...new Set(columns.flatMap(([, values]) => Object.keys(values || {})))];
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "result describe" },
      h("caption", {}, `${summary.file}: ${summary.rows} rows, ${columns.length} columns`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "column"), stats.map((s) => h("th", { scope: "col", class: "num" }, s)))),
      h(
        "tbody",
        {},
        columns.map(([name, values]) =>
          h("tr", {}, h("th", { scope: "row" }, name), stats.map((s) => h("td", { class: "num" }, scalar((values || {})[s])))),
        ),
      ),
    ),
  );
}

/* An evasion output's tags ({rows, evaded, success_rate}) as a sentence. */
export function evasionLine(tags) {
  const rate = Number(tags.success_rate);
  // A no-break space keeps the number and its % on one line.
  return `Success rate ${(100 * rate).toFixed(1)}\u00a0%: ${tags.evaded} of ${tags.rows} rows evaded.`;
}
