// Data: upload files (with progress, drag and drop), list/download/delete them, configure a
// source over one, preview its records page by page through iterkeys.

import { act, card, errorSlot, field, formatBytes, h, select, setOptions, showError } from "../dom.js";
import { fileBrowser } from "../files.js";
import { optionsForm, pluginConfig, specsFromConfig } from "../forms.js";

export const id = "data";
export const title = "Data";

let refreshFileTable = () => {};

export function mount(root, app) {
  root.append(
    h("p", { class: "lead" }, "Files in the server's upload directory, and sources that read them."),
    // Two columns on a desktop, the files beside the records of a source; one on a phone.
    h(
      "div",
      { class: "pair" },
      h("div", { class: "column" }, uploadCard(app), filesCard(app)),
      h("div", { class: "column" }, previewCard(app), sourceCard(app)),
    ),
  );
}

export function show() {
  refreshFileTable();
}

function uploadCard(app) {
  const input = h("input", { type: "file", id: "upload-input", multiple: true, class: "file-input" });
  const overwrite = h("input", { type: "checkbox", id: "upload-overwrite", checked: true });
  const queue = h("ul", { class: "uploads", id: "upload-list", "aria-live": "polite" });
  const error = errorSlot("upload-error");
  const zone = h(
    "div",
    { class: "drop", id: "drop-zone" },
    h("label", { for: input.id }, h("strong", {}, "Choose files"), " or drop them here"),
    input,
  );

  async function uploadAll(files) {
    showError(error, "");
    for (const file of files) {
      const bar = h("progress", { max: Math.max(file.size, 1), value: 0, "aria-label": `Upload of ${file.name}` });
      const status = h("span", { class: "status" }, "waiting");
      const item = h("li", { "data-file": file.name }, h("span", { class: "name" }, file.name), bar, status);
      queue.prepend(item);
      status.textContent = "uploading";
      try {
        await app.api.uploadWithProgress(file.name, file, {
          overwrite: overwrite.checked,
          onProgress(sent, total) {
            bar.max = Math.max(total, 1);
            bar.value = sent;
            status.textContent = `${Math.floor((100 * sent) / Math.max(total, 1))} %`;
          },
        });
        bar.value = bar.max;
        status.textContent = `done, ${formatBytes(file.size)}`;
        item.dataset.state = "done";
      } catch (err) {
        item.dataset.state = "error";
        status.textContent = "failed";
        item.append(h("p", { class: "error", role: "alert" }, err.message));
      }
    }
    await app.refreshFiles().catch((err) => showError(error, err.message));
  }

  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    uploadAll(files);
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    uploadAll([...event.dataTransfer.files]);
  });
  return card("Upload", zone, field("Replace a file of the same name", overwrite), error, queue);
}

function filesCard(app) {
  const error = errorSlot("files-error");
  const refresh = h("button", { type: "button", id: "files-refresh" }, "Refresh");
  const total = h("p", { class: "muted", id: "files-total", role: "status" });
  const browser = fileBrowser(app, {
    onUse: (filename, plugin) => app.events.dispatchEvent(new CustomEvent("use-file", { detail: { filename, plugin } })),
    afterDelete: () => app.refreshFiles(),
  });

  function render() {
    browser.render(app.files);
    const bytes = app.files.reduce((sum, f) => sum + f.size, 0);
    total.textContent = app.files.length
      ? `${app.files.length} file${app.files.length === 1 ? "" : "s"}, ${formatBytes(bytes)}`
      : "No files yet: upload one.";
  }

  refreshFileTable = () => act(refresh, error, () => app.refreshFiles());
  refresh.addEventListener("click", refreshFileTable);
  app.events.addEventListener("files", render);
  const head = h(
    "div",
    { class: "tree-head", "aria-hidden": "true" },
    h("span", {}, "Name"),
    h("span", { class: "num" }, "Size"),
    h("span", {}, "Changed"),
    h("span", {}, "Actions"),
  );
  return card("Files", h("div", { class: "toolbar" }, refresh, total, error), head, browser.element);
}

function sourceCard(app) {
  const plugin = select({ id: "source-plugin", name: "plugin" }, []);
  const label = h("input", { type: "text", id: "source-label", required: true, autocomplete: "off", spellcheck: "false", value: "mydata" });
  const holder = h("div");
  const submit = h("button", { type: "submit", id: "source-submit" }, "Configure source");
  const error = errorSlot("source-error");
  const done = h("p", { class: "ok", id: "source-done", role: "status" });
  let form = optionsForm([]);
  let listing = {};

  function build() {
    form = optionsForm(specsFromConfig(pluginConfig(listing[plugin.value], "source", plugin.value)), {
      legend: `${plugin.value} options`,
    });
    holder.replaceChildren(form.element);
  }

  const element = h(
    "form",
    { id: "source-form", novalidate: true },
    field("Source type", plugin, "from /list/sources"),
    field("Name", label, "the label (and context label) the other pages use for this source"),
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
      await app.api.configure("source", plugin.value, name, config);
      await app.api.context("source", name, name);
      app.recent.source = name;
      app.labels.add("source", name, { plugin: plugin.value, config });
      done.textContent = `Source ${name} is ready: preview it below.`;
    });
  });
  plugin.addEventListener("change", build);
  app.events.addEventListener("use-file", (event) => {
    const { filename: file, plugin: wanted } = event.detail;
    if (listing[wanted]) {
      plugin.value = wanted;
    }
    build();
    form.set("filename", file);
    label.value = file.split("/").pop().replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_") || "mydata";
    label.focus();
  });
  app
    .listing("sources")
    .then((sources) => {
      listing = sources;
      const names = Object.keys(sources).filter((name) => !sources[name].unavailable);
      setOptions(plugin, names, names.includes("csv") ? "csv" : names[0]);
      build();
    })
    .catch((err) => showError(error, err.message));
  return card("Configure a source", element);
}

function previewCard(app) {
  const source = select({ id: "preview-source" }, []);
  const size = h("input", { type: "number", id: "preview-size", min: 1, max: 1000, step: 1, value: 10, inputMode: "numeric" });
  const first = h("button", { type: "button", id: "preview-first" }, "First page");
  const prev = h("button", { type: "button", id: "preview-prev", disabled: true }, "Previous");
  const next = h("button", { type: "button", id: "preview-next", disabled: true }, "Next");
  const error = errorSlot("preview-error");
  const status = h("p", { class: "muted", id: "preview-status", role: "status" });
  const table = h("table", { id: "preview-table" });
  let pager = null;
  let pages = [];
  let current = -1;
  let finished = false;

  function sync() {
    const known = app.labels.list("source");
    // A source configured since the last sync is chosen; otherwise the choice stays.
    const fresh = known.includes(app.recent.source) && app.recent.source !== source.dataset.recent;
    setOptions(source, known.length ? known : [["", "(configure a source first)"]], fresh ? app.recent.source : source.value);
    if (fresh) {
      source.dataset.recent = app.recent.source;
    }
    first.disabled = !known.length;
  }

  function render() {
    const page = pages[current];
    const records = page ? Object.values(page.records) : [];
    const columns = [...new Set(records.flatMap((r) => Object.keys(r.features || {})))];
    table.replaceChildren(
      h("caption", { class: "visually-hidden" }, `Records of ${source.value}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "key"), columns.map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        records.map((r) => h("tr", { "data-key": r.key }, h("th", { scope: "row" }, r.key), columns.map((c) => h("td", {}, cell(r.features[c]))))),
      ),
    );
    const before = pages.slice(0, current).reduce((n, p) => n + Object.keys(p.records).length, 0);
    const more = current < pages.length - 1 || !finished;
    status.textContent = records.length
      ? `Page ${current + 1}: records ${before + 1}–${before + records.length}${more ? "" : " (the last)"}`
      : pages.length
        ? "No records."
        : "";
    prev.disabled = current <= 0;
    next.disabled = !more;
    table.dataset.page = String(current + 1);
  }

  async function advance() {
    if (current < pages.length - 1) {
      current += 1;
    } else {
      const step = await pager.next();
      if (!step.done) {
        pages.push(step.value);
        current += 1;
        finished = step.value.iterkey === null;
      } else {
        finished = true;
      }
    }
    if (finished && pager) {
      await pager.return();
    }
    render();
  }

  first.addEventListener("click", () =>
    act([first, next, prev], error, async () => {
      // Leaving a half-read source releases its cursor on the server.
      await pager?.return();
      const chunk = Number(size.value);
      if (!Number.isInteger(chunk) || chunk < 1) {
        throw new Error("Records per page: a whole number, 1 or more");
      }
      pager = app.api.recordPages(source.value, chunk);
      pages = [];
      current = -1;
      finished = false;
      await advance();
    }).finally(render),
  );
  next.addEventListener("click", () => act([next, first, prev], error, advance).finally(render));
  prev.addEventListener("click", () => {
    current = Math.max(0, current - 1);
    render();
  });
  app.labels.addEventListener("change", sync);
  sync();
  return card(
    "Preview records",
    h("div", { class: "row narrow" }, field("Source", source), field("Records per page", size)),
    h("div", { class: "toolbar" }, first, prev, next, error),
    status,
    h("div", { class: "scroll" }, table),
  );
}

function cell(value) {
  if (value === null || value === undefined) {
    return "";
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}
