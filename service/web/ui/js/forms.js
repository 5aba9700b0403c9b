// Forms generated from what the server declares: /list/{kind} config fields and module
// function options (type, default, choices, help, required).

import { field, h, newId, select } from "./dom.js";

/* The datalist of upload-dir files that path fields suggest from (kept fresh by the Data page). */
export const FILES_LIST = "ui-files";

/*
 * {name, base, list, nullable, required, default, choices, help} for every field of a /list
 * entry's config: {field: {plugin: {type, default, required, choices, help}, config: {}}}.
 */
export function specsFromConfig(config) {
  return Object.entries(config || {}).map(([name, entry]) => spec(name, entry.plugin || {}));
}

/* The same for a module function's declared options: [{name, type, default, ...}]. */
export function specsFromOptions(options) {
  return (options || []).map((option) => spec(option.name, option));
}

function spec(name, info) {
  let type = String(info.type || "str");
  let nullable = Boolean(info.nullable);
  if (type.endsWith(" or null")) {
    nullable = true;
    type = type.slice(0, -" or null".length);
  }
  const listed = /^List\[(.*)\]$/.exec(type);
  return {
    name,
    base: listed ? listed[1] : type,
    list: Boolean(listed),
    nullable,
    required: Boolean(info.required),
    default: info.default === undefined ? null : info.default,
    choices: info.choices || null,
    help: info.help || "",
  };
}

/* The plugin's own config section of a /list entry: entry[kind].config[name].config. */
export function pluginConfig(entry, kind, name) {
  const outer = entry && entry[kind] && entry[kind].config;
  return (outer && outer[name] && outer[name].config) || {};
}

class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

function shown(value) {
  if (value === null || value === undefined) {
    return "";
  }
  if (Array.isArray(value)) {
    return value.map(shown).join(", ");
  }
  if (typeof value === "object") {
    return JSON.stringify(value);
  }
  return String(value);
}

function control(spec, suggestions) {
  const id = newId(`opt-${spec.name}`);
  const attributes = { id, name: spec.name, required: spec.required && !spec.list };
  if (spec.base === "bool" && !spec.list) {
    return h("input", { ...attributes, type: "checkbox", checked: Boolean(spec.default) });
  }
  if (spec.base === "enum" && spec.choices) {
    const options = spec.choices.map((choice) => [String(choice), String(choice)]);
    if (spec.nullable || spec.default === null) {
      options.unshift(["", "(none)"]);
    }
    return select(attributes, options, shown(spec.default));
  }
  if (spec.base === "object") {
    return h("textarea", { ...attributes, rows: 3, spellcheck: "false", value: shown(spec.default) });
  }
  const input = h("input", { ...attributes, value: shown(spec.default), autocomplete: "off" });
  if ((spec.base === "int" || spec.base === "float") && !spec.list) {
    input.type = "number";
    input.step = spec.base === "int" ? "1" : "any";
    input.inputMode = spec.base === "int" ? "numeric" : "decimal";
  } else {
    input.type = "text";
    input.spellcheck = false;
  }
  if (spec.base === "path") {
    input.setAttribute("list", FILES_LIST);
  } else if (suggestions && suggestions[spec.name]) {
    input.setAttribute("list", suggestions[spec.name]);
  }
  if (spec.base === "Feature") {
    input.placeholder = spec.list ? "Years:int:1, Expertise:int:1" : "Salary:float:1";
  }
  return input;
}

function label(spec) {
  const notes = [];
  if (spec.list) {
    notes.push("comma-separated");
  }
  if (spec.required) {
    notes.push("required");
  }
  return notes.length ? `${spec.name} (${notes.join(", ")})` : spec.name;
}

function helpOf(spec) {
  const type = `${spec.list ? `list of ${spec.base}` : spec.base}${spec.nullable ? " or none" : ""}`;
  return spec.help ? `${spec.help} — ${type}` : type;
}

function scalar(spec, raw) {
  if (spec.base === "int" || spec.base === "float") {
    const number = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(number)) {
      throw new FieldError(spec.name, `${spec.name}: ${JSON.stringify(raw)} is not a number`);
    }
    if (spec.base === "int" && !Number.isInteger(number)) {
      throw new FieldError(spec.name, `${spec.name}: ${raw} is not a whole number`);
    }
    return number;
  }
  return raw;
}

function read(spec, element) {
  if (element.type === "checkbox") {
    return element.checked === Boolean(spec.default) ? undefined : element.checked;
  }
  const raw = element.value;
  // Left as declared (or empty): the server applies the default, or says what is missing.
  if (raw.trim() === "" || raw === shown(spec.default)) {
    return undefined;
  }
  if (spec.base === "object") {
    try {
      return JSON.parse(raw);
    } catch (error) {
      throw new FieldError(spec.name, `${spec.name}: not JSON (${error.message})`);
    }
  }
  if (spec.list) {
    return raw
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean)
      .map((part) => scalar(spec, part));
  }
  return scalar(spec, raw);
}

/*
 * A fieldset of labelled controls for specs. values() returns the config object to send (only
 * fields the user set; the server fills in defaults) or throws, after marking the field, when a
 * value cannot be read (a number field holding text, an object field that is not JSON).
 * suggestions: {fieldName: datalistId} for text fields.
 */
export function optionsForm(specs, { legend = "Options", suggestions = null, hideEmpty = false } = {}) {
  const rows = new Map();
  const fieldset = h("fieldset", { class: "options", hidden: hideEmpty && specs.length === 0 }, h("legend", {}, legend));
  if (specs.length === 0) {
    fieldset.append(h("p", { class: "muted" }, "No options."));
  }
  for (const spec of specs) {
    const element = control(spec, suggestions);
    const row = field(label(spec), element, helpOf(spec));
    rows.set(spec.name, { row, element, spec });
    fieldset.append(row);
  }
  return {
    element: fieldset,
    control(name) {
      return rows.get(name)?.element;
    },
    set(name, value) {
      const entry = rows.get(name);
      if (!entry) {
        return;
      }
      if (entry.element.type === "checkbox") {
        entry.element.checked = Boolean(value);
      } else {
        entry.element.value = shown(value);
      }
    },
    values() {
      const out = {};
      let failure = null;
      for (const { row, element, spec } of rows.values()) {
        row.showError("");
        try {
          const value = read(spec, element);
          if (value !== undefined) {
            out[spec.name] = value;
          }
        } catch (error) {
          row.showError(error.message);
          failure ||= error;
        }
      }
      if (failure) {
        rows.get(failure.field)?.element.focus();
        throw failure;
      }
      return out;
    },
  };
}
