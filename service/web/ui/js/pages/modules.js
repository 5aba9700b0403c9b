// Modules: run a module function over uploaded files with a form generated from its declared
// options; list what it wrote, with downloads, and its log.

import { act, card, errorSlot, field, formatBytes, h, prose, saveBlob, select, setOptions, showError } from "../dom.js";
import { optionsForm, pluginConfig, specsFromConfig, specsFromOptions } from "../forms.js";
import { describeTable, evasionLine } from "../shown.js";

export const id = "modules";
export const title = "Modules";

export function mount(root, app) {
  root.append(
    h("p", { class: "lead" }, "Module functions read files from the upload directory and write new ones."),
    h("div", { class: "grid" }, ...runCards(app)),
  );
}

function runCards(app) {
  const module = select({ id: "module-plugin" }, []);
  const about = h("p", { class: "muted", id: "module-about" });
  const configHolder = h("div");
  const fn = select({ id: "module-function" }, []);
  const fnHelp = h("p", { class: "muted", id: "function-about" });
  const optionsHolder = h("div");
  const files = h("fieldset", { class: "files", id: "module-files" }, h("legend", {}, "Input files"));
  const submit = h("button", { type: "submit", id: "module-run" }, "Run");
  const error = errorSlot("module-error");
  const output = h("div", { id: "module-output", "aria-live": "polite" }, h("p", { class: "muted", id: "module-runs-empty" }, "Runs of this page appear here, the newest first."));
  const modelsList = h("datalist", { id: "ui-model-contexts" });
  let listing = {};
  let config = optionsForm([]);
  let options = optionsForm([]);

  const declared = () => (listing[module.value] && listing[module.value].functions) || {};

  function buildModule() {
    const entry = listing[module.value] || {};
    about.replaceChildren(...prose(entry.description || entry.tagline || ""));
    config = optionsForm(specsFromConfig(pluginConfig(entry, "module", module.value)), {
      legend: `${module.value} module config`,
      hideEmpty: true,
    });
    configHolder.replaceChildren(config.element);
    const names = Object.keys(declared());
    setOptions(fn, names, names[0]);
    buildFunction();
  }

  function buildFunction() {
    const info = declared()[fn.value] || {};
    const types = [info.expected_filetype, ...(info.optional_filetypes || [])].filter(Boolean);
    fnHelp.replaceChildren(...prose(info.help || ""), types.length ? ` (reads ${types.map((t) => `.${t}`).join(", ")})` : "");
    options = optionsForm(specsFromOptions(info.options), {
      legend: `${fn.value} options`,
      suggestions: { model: modelsList.id },
    });
    optionsHolder.replaceChildren(options.element);
    syncFiles();
  }

  function syncFiles() {
    const info = declared()[fn.value] || {};
    const types = [info.expected_filetype, ...(info.optional_filetypes || [])].filter(Boolean);
    const ticked = new Set([...files.querySelectorAll("input:checked")].map((i) => i.value));
    const fit = app.files.filter((f) => !types.length || types.some((t) => f.filename.endsWith(`.${t}`)));
    files.replaceChildren(
      h("legend", {}, "Input files"),
      ...(fit.length
        ? fit.map((f) => field(`${f.filename} (${formatBytes(f.size)})`, h("input", { type: "checkbox", value: f.filename, checked: ticked.has(f.filename) })))
        : [h("p", { class: "muted" }, `No ${types.map((t) => `.${t}`).join(" or ") || ""} files uploaded yet.`)]),
    );
  }

  function syncModels() {
    modelsList.replaceChildren(...app.labels.list("model").map((m) => h("option", { value: m })));
  }

  function showResult(result) {
    output.querySelector("#module-runs-empty")?.remove();
    const shown = h("div", { class: "shown" });
    const files = (result.files || []).map((f) => (typeof f === "string" ? { filename: f } : f));
    output.prepend(h("article", { class: "run", "data-run": result.run },
      h("h3", {}, `${module.value}.${result.function}`),
      h("p", { class: "muted" }, `Run ${result.run}`),
      shown,
      h("p", { class: "muted" }, `Wrote into ${result.output_dir}:`),
      h(
        "ul",
        { class: "outputs" },
        files.map((f) => {
          const name = f.filename;
          const rowError = h("p", { class: "error", role: "alert", hidden: true });
          const download = h("button", { type: "button", class: "small", "aria-label": `Download ${name}` }, "Download");
          download.addEventListener("click", () =>
            act(download, rowError, async () => saveBlob(await app.api.download(name), name.split("/").pop())),
          );
          const size = typeof f.size === "number" ? ` (${formatBytes(f.size)})` : "";
          // The folder is named above: each file by its own name.
          return h("li", { "data-file": name }, h("span", { class: "name", title: name }, `${name.split("/").pop()}${size}`), download, rowError);
        }),
      ),
      result.logs && result.logs.length ? h("pre", { class: "log" }, result.logs.join("\n")) : null,
    ));
    showOutputs(shown, files);
  }

  /* What the outputs say, shown rather than only downloadable: describe's statistics as a
   * table, an evasion's success rate. */
  async function showOutputs(shown, files) {
    for (const f of files) {
      if (f.tags && f.tags.success_rate !== undefined && f.filename.endsWith(".evasion.json")) {
        shown.append(h("p", { class: "evasion", "data-file": f.filename }, h("strong", {}, f.filename.split("/").pop()), ": ", evasionLine(f.tags)));
      }
    }
    for (const f of files.filter((file) => file.filename.endsWith(".describe.json"))) {
      try {
        const summary = JSON.parse(await (await app.api.download(f.filename)).text());
        shown.append(describeTable(summary));
      } catch (err) {
        shown.append(h("p", { class: "error", role: "alert" }, `${f.filename}: ${err.message}`));
      }
    }
  }

  const form = h(
    "form",
    { id: "module-form", novalidate: true },
    field("Module", module, "from /list/modules"),
    about,
    configHolder,
    field("Function", fn),
    fnHelp,
    optionsHolder,
    files,
    h("div", { class: "toolbar" }, submit, error),
    modelsList,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(submit, error, async () => {
      const moduleConfig = config.values();
      const body = { files: [...files.querySelectorAll("input:checked")].map((i) => i.value), options: options.values() };
      // The module is configured under its own name each run: cheap, and always the config shown.
      await app.api.configure("module", module.value, module.value, moduleConfig);
      await app.api.context("module", module.value, module.value);
      app.labels.add("module", module.value, { plugin: module.value, config: moduleConfig });
      const result = await app.api.module(module.value, fn.value, body);
      showResult(result);
      await app.refreshFiles();
    });
  });
  module.addEventListener("change", buildModule);
  fn.addEventListener("change", buildFunction);
  app.events.addEventListener("files", syncFiles);
  app.labels.addEventListener("change", syncModels);
  syncModels();
  app
    .listing("modules")
    .then((modules) => {
      listing = modules;
      const names = Object.keys(modules).filter((name) => !modules[name].unavailable);
      setOptions(module, names.map((n) => [n, modules[n].tagline ? `${n} — ${modules[n].tagline.replace(/`+/g, "")}` : n]), names[0]);
      buildModule();
    })
    .catch((err) => showError(error, err.message));
  return [card("Run a module function", form), card("Runs", output)];
}
