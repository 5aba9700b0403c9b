// The browser page: runs the shared workflow with the client from /api.js and draws the results.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const SAMPLE = "../data/salaries.csv";

const $ = (selector) => document.querySelector(selector);

function svg(name, attributes = {}, parent = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    element.setAttribute(key, String(value));
  }
  if (parent) {
    parent.appendChild(element);
  }
  return element;
}

// Round numbers for axis ticks: about `count` of them between lo and hi.
function ticks(lo, hi, count = 6) {
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const values = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    values.push(Number(v.toFixed(10)));
  }
  return values;
}

// Predicted (y) against true (x) salary, one circle per record, and the y = x line a perfect
// model would sit on.
function plot(predictions) {
  const chart = $("#plot");
  chart.querySelectorAll(":scope > :not(title)").forEach((element) => element.remove());
  const width = 480;
  const height = 380;
  const margin = { top: 16, right: 16, bottom: 48, left: 56 };
  const values = predictions.flatMap((p) => [p.actual, p.predicted]);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  const pad = (hi - lo || 1) * 0.06;
  lo -= pad;
  hi += pad;
  const x = (v) => margin.left + ((v - lo) / (hi - lo)) * (width - margin.left - margin.right);
  const y = (v) => height - margin.bottom - ((v - lo) / (hi - lo)) * (height - margin.top - margin.bottom);

  const grid = svg("g", { class: "grid" }, chart);
  const axes = svg("g", { class: "axis" }, chart);
  for (const t of ticks(lo, hi)) {
    svg("line", { x1: x(t), x2: x(t), y1: y(lo), y2: y(hi) }, grid);
    svg("line", { x1: x(lo), x2: x(hi), y1: y(t), y2: y(t) }, grid);
    svg("text", { x: x(t), y: y(lo) + 16, "text-anchor": "middle" }, axes).textContent = t;
    svg("text", { x: x(lo) - 6, y: y(t) + 4, "text-anchor": "end" }, axes).textContent = t;
  }
  svg("path", { d: `M${x(lo)},${y(hi)} V${y(lo)} H${x(hi)}`, fill: "none" }, axes);
  svg("text", { class: "label", x: (x(lo) + x(hi)) / 2, y: height - 10, "text-anchor": "middle" }, axes)
    .textContent = "true Salary";
  svg("text", {
    class: "label",
    transform: `translate(14 ${(y(lo) + y(hi)) / 2}) rotate(-90)`,
    "text-anchor": "middle",
  }, axes).textContent = "predicted Salary";
  svg("line", { class: "ideal", x1: x(lo), y1: y(lo), x2: x(hi), y2: y(hi) }, chart);

  const points = svg("g", { class: "points" }, chart);
  for (const p of predictions) {
    const circle = svg("circle", {
      class: "prediction",
      cx: x(p.actual),
      cy: y(p.predicted),
      r: 5,
      "data-key": p.key,
    }, points);
    svg("title", {}, circle).textContent =
      `record ${p.key}: Years ${p.years}, Salary ${p.actual}, predicted ${p.predicted.toFixed(1)}`;
  }
}

function showRecords(records, predictions) {
  const predicted = new Map(predictions.map((p) => [p.key, p.predicted]));
  const body = $("#records tbody");
  body.replaceChildren();
  for (const record of records) {
    const row = body.insertRow();
    const guess = predicted.get(record.key);
    for (const cell of [record.key, record.features.Years, record.features.Salary,
      guess === undefined ? "" : guess.toFixed(1)]) {
      row.insertCell().textContent = cell;
    }
  }
}

function setStatus(state, text) {
  const status = $("#status");
  status.dataset.state = state;
  status.textContent = text;
}

async function run(event) {
  event.preventDefault();
  const button = $("#run");
  button.disabled = true;
  $("#steps").replaceChildren();
  setStatus("running", "Working…");
  try {
    const chosen = $("#csv").files[0];
    const csv = chosen || (await (await fetch(SAMPLE)).blob());
    const api = new DFFMLHTTPAPI();
    const username = $("#username").value;
    if (username) {
      // Later calls carry the access token (servers run with -auth token).
      await api.login(username, $("#password").value);
    }
    const result = await runSalaries(api, csv, {
      filename: chosen ? chosen.name : "salaries.csv",
      log: (step) => {
        const item = document.createElement("li");
        item.textContent = step;
        $("#steps").appendChild(item);
      },
    });
    $("#pages").textContent = `(${result.records.length} records, read in ${result.pages} pages)`;
    $("#score").textContent = `Mean squared error: ${result.mse.toFixed(2)}`;
    showRecords(result.records, result.predictions);
    plot(result.predictions);
    setStatus("done", `Done: ${result.predictions.length} predictions plotted.`);
  } catch (error) {
    // The server's own message (a DFFMLHTTPError) is the useful part for the user.
    setStatus("error", `Error: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

$("#run-form").addEventListener("submit", run);
