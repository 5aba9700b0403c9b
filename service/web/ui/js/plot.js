// Hand-written SVG plots: predictions against the truth, residuals, a confusion matrix.

import { s } from "./dom.js";

const WIDTH = 480;
const HEIGHT = 360;
const MARGIN = { top: 16, right: 16, bottom: 48, left: 64 };

/* Round tick values, about `count` of them, between lo and hi. */
export function ticks(lo, hi, count = 5) {
  const raw = (hi - lo) / count || 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw);
  const values = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && values.length < 50; v += step) {
    values.push(Number(v.toPrecision(12)));
  }
  return values;
}

function label(value) {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e6 || magnitude < 1e-3)) {
    return value.toExponential(1);
  }
  return String(Number(value.toPrecision(6)));
}

function padded(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.06;
  lo -= pad;
  hi += pad;
  return [lo, hi];
}

function frame(svg, title, [xlo, xhi], [ylo, yhi], xLabel, yLabel) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("role", "img");
  svg.append(s("title", {}, title));
  const x = (v) => MARGIN.left + ((v - xlo) / (xhi - xlo)) * (WIDTH - MARGIN.left - MARGIN.right);
  const y = (v) =>
    HEIGHT - MARGIN.bottom - ((v - ylo) / (yhi - ylo)) * (HEIGHT - MARGIN.top - MARGIN.bottom);
  const grid = s("g", { class: "grid" });
  const axes = s("g", { class: "axis" });
  for (const t of ticks(xlo, xhi)) {
    grid.append(s("line", { x1: x(t), x2: x(t), y1: y(ylo), y2: y(yhi) }));
    axes.append(s("text", { x: x(t), y: y(ylo) + 18, "text-anchor": "middle" }, label(t)));
  }
  for (const t of ticks(ylo, yhi)) {
    grid.append(s("line", { x1: x(xlo), x2: x(xhi), y1: y(t), y2: y(t) }));
    axes.append(s("text", { x: x(xlo) - 6, y: y(t) + 4, "text-anchor": "end" }, label(t)));
  }
  axes.append(s("path", { d: `M${x(xlo)},${y(yhi)} V${y(ylo)} H${x(xhi)}`, fill: "none" }));
  axes.append(
    s("text", { class: "label", x: (x(xlo) + x(xhi)) / 2, y: HEIGHT - 8, "text-anchor": "middle" }, xLabel),
  );
  axes.append(
    s(
      "text",
      {
        class: "label",
        transform: `translate(16 ${(y(ylo) + y(yhi)) / 2}) rotate(-90)`,
        "text-anchor": "middle",
      },
      yLabel,
    ),
  );
  svg.append(grid, axes);
  return { x, y };
}

/*
 * One circle per point {key, truth, predicted}: predicted (y) against true (x) value, and the
 * y = x line a perfect model sits on.
 */
export function scatter(svg, points, name) {
  const [lo, hi] = padded(points.flatMap((p) => [p.truth, p.predicted]));
  const { x, y } = frame(
    svg,
    `Predicted ${name} against true ${name}, one point per record`,
    [lo, hi],
    [lo, hi],
    `true ${name}`,
    `predicted ${name}`,
  );
  svg.append(s("line", { class: "ideal", x1: x(lo), y1: y(lo), x2: x(hi), y2: y(hi) }));
  const layer = s("g", { class: "points" });
  for (const p of points) {
    layer.append(
      s(
        "circle",
        { class: "point", cx: x(p.truth), cy: y(p.predicted), r: 5, "data-key": p.key },
        s("title", {}, `record ${p.key}: true ${p.truth}, predicted ${label(p.predicted)}`),
      ),
    );
  }
  svg.append(layer);
}

/* Residual (true − predicted) against the predicted value, around the zero line. */
export function residuals(svg, points, name) {
  const values = points.map((p) => p.truth - p.predicted);
  const [xlo, xhi] = padded(points.map((p) => p.predicted));
  const extent = Math.max(...values.map(Math.abs)) || 1;
  const [ylo, yhi] = padded([-extent, extent]);
  const { x, y } = frame(
    svg,
    `Residuals: true minus predicted ${name}, against the prediction`,
    [xlo, xhi],
    [ylo, yhi],
    `predicted ${name}`,
    "true − predicted",
  );
  svg.append(s("line", { class: "ideal", x1: x(xlo), y1: y(0), x2: x(xhi), y2: y(0) }));
  const layer = s("g", { class: "points" });
  points.forEach((p, i) => {
    layer.append(
      s(
        "circle",
        { class: "residual", cx: x(p.predicted), cy: y(values[i]), r: 4, "data-key": p.key },
        s("title", {}, `record ${p.key}: residual ${label(values[i])}`),
      ),
    );
  });
  svg.append(layer);
}

/* Counts of (true class, predicted class) as a grid of shaded cells; rows are the truth. */
export function confusion(svg, points, name) {
  const classes = [...new Set(points.flatMap((p) => [String(p.truth), String(p.predicted)]))].sort(
    (a, b) => a.localeCompare(b, undefined, { numeric: true }),
  );
  const index = new Map(classes.map((c, i) => [c, i]));
  const counts = classes.map(() => classes.map(() => 0));
  for (const p of points) {
    counts[index.get(String(p.truth))][index.get(String(p.predicted))] += 1;
  }
  const most = Math.max(1, ...counts.flat());
  const size = Math.max(18, Math.min(64, Math.floor(300 / classes.length)));
  const left = 96;
  const top = 56;
  const width = left + size * classes.length + 16;
  const height = top + size * classes.length + 16;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.append(s("title", {}, `Confusion matrix of ${name}: rows true class, columns predicted class`));
  const axes = s("g", { class: "axis" });
  axes.append(s("text", { class: "label", x: left + (size * classes.length) / 2, y: 16, "text-anchor": "middle" }, `predicted ${name}`));
  axes.append(
    s("text", { class: "label", transform: `translate(14 ${top + (size * classes.length) / 2}) rotate(-90)`, "text-anchor": "middle" }, `true ${name}`),
  );
  classes.forEach((c, i) => {
    axes.append(s("text", { x: left + size * i + size / 2, y: top - 8, "text-anchor": "middle" }, c));
    axes.append(s("text", { x: left - 8, y: top + size * i + size / 2 + 4, "text-anchor": "end" }, c));
  });
  const cells = s("g", { class: "cells" });
  counts.forEach((row, i) => {
    row.forEach((count, j) => {
      const share = count / most;
      cells.append(
        s(
          "rect",
          {
            class: i === j ? "cell hit" : "cell miss",
            x: left + size * j,
            y: top + size * i,
            width: size,
            height: size,
            "fill-opacity": (0.08 + 0.92 * share).toFixed(3),
            "data-true": classes[i],
            "data-predicted": classes[j],
            "data-count": count,
          },
          s("title", {}, `true ${classes[i]}, predicted ${classes[j]}: ${count}`),
        ),
        s(
          "text",
          {
            class: share > 0.55 ? "count on-dark" : "count",
            x: left + size * j + size / 2,
            y: top + size * i + size / 2 + 4,
            "text-anchor": "middle",
          },
          String(count),
        ),
      );
    });
  });
  svg.append(axes, cells);
}

/*
 * Whether predictions look like classes: any value that is not a number, or predicted values
 * that are all among a small set of true values (a regressor's output rarely lands on them).
 */
export function looksLikeClasses(points) {
  if (points.some((p) => typeof p.truth !== "number" || typeof p.predicted !== "number")) {
    return true;
  }
  const truths = new Set(points.map((p) => p.truth));
  return truths.size <= 20 && points.every((p) => truths.has(p.predicted));
}
