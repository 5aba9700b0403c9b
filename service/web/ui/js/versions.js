// The Models page's versions card: what -keep-versions kept of the chosen model (GET
// /model/{ctx}/versions), its aliases, and a form to point an alias at a version (rolling back
// is moving one). Predicting from a version is naming it: "ctx@2" or "ctx@champion".

import { act, card, errorSlot, field, h, select, setOptions } from "./dom.js";
import { when } from "./files.js";

export function versionsCard({ app, model }) {
  const status = h("p", { id: "versions-status", class: "muted", role: "status" });
  const body = h("tbody");
  const table = h(
    "table",
    { id: "versions-table", hidden: true },
    h("caption", {}, "Versions kept of this model, newest first"),
    h("thead", {}, h("tr", {}, ...["Version", "Trained", "On", "Aliases"].map((t) => h("th", { scope: "col" }, t)))),
    body,
  );
  const alias = h("input", { id: "alias-name", type: "text", value: "champion", required: true, autocomplete: "off" });
  const version = select({ id: "alias-version" }, []);
  const submit = h("button", { type: "submit", id: "alias-submit" }, "Point alias");
  const error = errorSlot("alias-error");
  const form = h(
    "form",
    { id: "alias-form", hidden: true, novalidate: true },
    h("div", { class: "row" }, field("Alias", alias, "a name such as champion; latest moves by itself"), field("Version", version)),
    h("div", { class: "toolbar" }, submit, error),
  );

  function show(listing) {
    const byVersion = {};
    for (const [name, number] of Object.entries(listing.aliases || {})) {
      (byVersion[number] ||= []).push(name);
    }
    const kept = [...(listing.versions || [])].sort((a, b) => b.version - a.version);
    body.replaceChildren(
      ...kept.map((v) =>
        h(
          "tr",
          { "data-version": String(v.version) },
          h("td", {}, String(v.version)),
          h("td", {}, when(v.trained)),
          h("td", {}, (v.sources || []).join(", ")),
          h("td", {}, (byVersion[v.version] || []).sort().join(", ")),
        ),
      ),
    );
    setOptions(version, kept.map((v) => [String(v.version), `version ${v.version}`]));
    table.hidden = form.hidden = !kept.length;
    status.textContent = kept.length
      ? `Predict with a version by naming it: ${model.value}@${kept[0].version} or ${model.value}@latest.`
      : "No versions kept: the server keeps them for a model with a location when started with -keep-versions.";
  }

  async function refresh() {
    const ctx = model.value;
    if (!ctx) {
      show({});
      return;
    }
    try {
      const listing = await app.api.versions(ctx);
      if (model.value === ctx) {
        show(listing);
      }
    } catch {
      // A model the page cannot ask (not loaded yet, say): nothing to show.
      show({});
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(submit, error, async () => {
      show(await app.api.setAlias(model.value, alias.value.trim(), Number(version.value)));
    });
  });
  model.addEventListener("change", refresh);
  // A training keeps a new version: the labels refresh after one, and so does this list.
  app.labels.addEventListener("change", refresh);
  return card("Versions", status, table, form);
}
