// The upload dir as a file browser: folders (collapsed until opened, such as outputs/ and
// users/…) with their files' size and last change, and the actions that fit each file's type:
// a source only from a data file, a preview in place of CSV, JSON and NDJSON files.

import { act, formatBytes, h, saveBlob } from "./dom.js";

// The source plugin that reads a file, by its extension (the Data page's "Use as source").
const SOURCES = [
  [/\.csv$/i, "csv"],
  [/\.json$/i, "json"],
  [/\.(db|sqlite3?)$/i, "sqlite"],
];
// Files shown in place: the first rows of a table, or the JSON pretty-printed.
const PREVIEWS = [
  [/\.csv$/i, "csv"],
  [/\.json$/i, "json"],
  [/\.(ndjson|jsonl)$/i, "ndjson"],
  [/\.(txt|log|md)$/i, "text"],
];
// A preview reads the whole file through the client: larger ones are only downloaded.
const PREVIEW_MAX_BYTES = 2 * 1024 * 1024;
const PREVIEW_ROWS = 20;

// JSON reports the modules write (statistics, attack results): read, not records.
const REPORTS = /\.(describe|evasion)\.json$/i;

/* The source plugin that reads name, or null when no source reads it. */
export function sourceFor(name) {
  if (REPORTS.test(name)) {
    return null;
  }
  return SOURCES.find(([pattern]) => pattern.test(name))?.[1] || null;
}

function previewKind(name) {
  return PREVIEWS.find(([pattern]) => pattern.test(name))?.[1] || null;
}

/* {files: [...], folders: Map(name → tree)} from "a/b/c.csv" names. */
function treeOf(files) {
  const root = { files: [], folders: new Map() };
  for (const file of files) {
    const parts = file.filename.split("/");
    let node = root;
    for (const part of parts.slice(0, -1)) {
      if (!node.folders.has(part)) {
        node.folders.set(part, { files: [], folders: new Map() });
      }
      node = node.folders.get(part);
    }
    node.files.push(file);
  }
  return root;
}

function totals(node) {
  let count = node.files.length;
  let bytes = node.files.reduce((sum, f) => sum + f.size, 0);
  let newest = node.files.reduce((latest, f) => (f.modified && f.modified > latest ? f.modified : latest), "");
  for (const child of node.folders.values()) {
    const inner = totals(child);
    count += inner.count;
    bytes += inner.bytes;
    newest = inner.newest > newest ? inner.newest : newest;
  }
  return { count, bytes, newest };
}

export function when(iso) {
  if (!iso) {
    return "";
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
}

/* The first rows of a CSV text as [header, ...rows] (quotes honoured, "" inside quotes). */
export function parseCsv(text, limit) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length <= limit; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") {
        i += 1;
      }
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else {
      cell += c;
    }
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows.slice(0, limit + 1);
}

function table(caption, columns, rows) {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "preview" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((_, i) => h("td", {}, r[i] ?? ""))))),
    ),
  );
}

function shown(value) {
  if (value === null || value === undefined) {
    return "";
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/* The preview of a file's text as elements: a table for CSV and NDJSON, pretty JSON. */
export function previewOf(kind, text, name) {
  if (kind === "csv") {
    const [header = [], ...rows] = parseCsv(text, PREVIEW_ROWS);
    const lines = text.split("\n").filter((l) => l.trim()).length - 1;
    return table(`${name}: the first ${rows.length} of ${Math.max(lines, rows.length)} rows`, header, rows);
  }
  if (kind === "ndjson") {
    const lines = text.split("\n").filter((l) => l.trim());
    const objects = lines.slice(0, PREVIEW_ROWS).map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        return { line };
      }
    });
    const columns = [...new Set(objects.flatMap((o) => (o && typeof o === "object" && !Array.isArray(o) ? Object.keys(o) : ["value"])))];
    const rows = objects.map((o) => columns.map((c) => shown(o && typeof o === "object" && !Array.isArray(o) ? o[c] : o)));
    return table(`${name}: the first ${rows.length} of ${lines.length} lines`, columns, rows);
  }
  if (kind === "json") {
    let pretty = text;
    try {
      pretty = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // Not JSON after all: shown as it is.
    }
    const lines = pretty.split("\n");
    const cut = lines.length > 200 ? `${lines.slice(0, 200).join("\n")}\n… (${lines.length - 200} more lines)` : pretty;
    return h("pre", { class: "log", role: "region", tabindex: "0", "aria-label": `Contents of ${name}` }, cut);
  }
  const lines = text.split("\n");
  return h("pre", { class: "log", role: "region", tabindex: "0", "aria-label": `Contents of ${name}` }, lines.slice(0, 200).join("\n"));
}

/*
 * The browser: render(files) draws it again keeping which folders are open and which previews
 * shown; onUse(filename, plugin) is "Use as source"; afterDelete() lists the files again.
 */
export function fileBrowser(app, { onUse, afterDelete }) {
  const element = h("div", { id: "files-table", class: "files" });
  const open = new Set();
  const previews = new Set();

  function fileRow(file) {
    const base = file.filename.split("/").pop();
    const rowError = h("p", { class: "error", role: "alert", hidden: true });
    const actions = h("div", { class: "row-actions" });
    const download = h("button", { type: "button", class: "small", "aria-label": `Download ${file.filename}` }, "Download");
    download.addEventListener("click", () => act(download, rowError, async () => saveBlob(await app.api.download(file.filename), base)));
    const plugin = sourceFor(file.filename);
    const kind = previewKind(file.filename);
    const panel = h("div", { class: "file-preview", hidden: true, "aria-live": "polite" });
    const item = h(
      "li",
      { "data-file": file.filename, class: "file" },
      h("span", { class: "name", title: file.filename }, base),
      h("span", { class: "num size" }, formatBytes(file.size)),
      h("span", { class: "time muted" }, file.modified ? h("time", { datetime: file.modified }, when(file.modified)) : ""),
      actions,
      panel,
    );
    if (kind) {
      const preview = h("button", { type: "button", class: "small", "aria-expanded": "false", "aria-label": `Preview ${file.filename}` }, "Preview");
      const showPreview = () =>
        act(preview, rowError, async () => {
          if (file.size > PREVIEW_MAX_BYTES) {
            panel.replaceChildren(h("p", { class: "muted" }, `Larger than ${formatBytes(PREVIEW_MAX_BYTES)}: download it to read it.`));
          } else {
            const text = await (await app.api.download(file.filename)).text();
            panel.replaceChildren(previewOf(kind, text, file.filename));
          }
          panel.hidden = false;
          preview.setAttribute("aria-expanded", "true");
          preview.textContent = "Hide";
          previews.add(file.filename);
        });
      preview.addEventListener("click", () => {
        if (!panel.hidden) {
          panel.hidden = true;
          preview.setAttribute("aria-expanded", "false");
          preview.textContent = "Preview";
          previews.delete(file.filename);
          return;
        }
        showPreview();
      });
      actions.append(preview);
      if (previews.has(file.filename)) {
        showPreview();
      }
    }
    if (plugin) {
      const use = h("button", { type: "button", class: "small", "aria-label": `Configure a source from ${file.filename}` }, "Use as source");
      use.addEventListener("click", () => onUse(file.filename, plugin));
      actions.append(use);
    }
    const remove = h("button", { type: "button", class: "small danger", "aria-label": `Delete ${file.filename}` }, "Delete");
    let armed = false;
    remove.addEventListener("click", async () => {
      if (!armed) {
        // A second press confirms: a slip of the finger should not delete data.
        armed = true;
        remove.textContent = "Really delete?";
        remove.addEventListener("blur", () => {
          armed = false;
          remove.textContent = "Delete";
        }, { once: true });
        return;
      }
      await act(remove, rowError, async () => {
        await app.api.deleteFile(file.filename);
        await afterDelete();
      });
    });
    actions.append(download, remove, rowError);
    return item;
  }

  function folderRow(name, path, node) {
    const { count, bytes, newest } = totals(node);
    const details = h("details", { "data-folder": path, open: open.has(path) });
    details.addEventListener("toggle", () => (details.open ? open.add(path) : open.delete(path)));
    details.append(
      h(
        "summary",
        {},
        h("span", { class: "name" }, `${name}/`),
        h("span", { class: "num size" }, formatBytes(bytes)),
        h("span", { class: "time muted" }, `${count} file${count === 1 ? "" : "s"}${newest ? `, newest ${when(newest)}` : ""}`),
      ),
      list(node, `${path}/`),
    );
    return h("li", { class: "folder" }, details);
  }

  function list(node, prefix) {
    return h(
      "ul",
      { class: "tree" },
      [...node.folders.entries()].map(([name, child]) => folderRow(name, `${prefix}${name}`, child)),
      node.files.map(fileRow),
    );
  }

  return {
    element,
    render(files) {
      element.replaceChildren(list(treeOf(files), ""));
    },
  };
}
