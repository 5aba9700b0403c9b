// Small DOM helpers: build elements, label controls, run an action with its error beside it.

const SVG_NS = "http://www.w3.org/2000/svg";
let lastId = 0;

/* A unique id for a control, so its <label for> and aria-describedby can point at it. */
export function newId(prefix) {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    parent.append(child instanceof Node ? child : String(child));
  }
}

// Properties rather than attributes: these must follow the control's live state.
const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "selected", "multiple"]);

function assign(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (PROPERTIES.has(name)) {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  return element;
}

/* h("button", {type: "button", onclick}, "Text"): an HTML element with attributes and children. */
export function h(tag, attributes = {}, ...children) {
  const element = assign(document.createElement(tag), attributes);
  append(element, children);
  return element;
}

/* The same for SVG elements. */
export function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

/*
 * A labelled form row: <label for> the control, the help text tied to it with
 * aria-describedby, and a slot for an error about this control.
 */
export function field(text, control, help = "") {
  control.id ||= newId("field");
  const described = [];
  const helpText = help ? h("small", { class: "help", id: `${control.id}-help` }, typeof help === "string" ? prose(help) : help) : null;
  if (helpText) {
    described.push(helpText.id);
  }
  const error = h("small", { class: "error", id: `${control.id}-error`, role: "alert", hidden: true });
  described.push(error.id);
  control.setAttribute("aria-describedby", described.join(" "));
  const checkbox = control.type === "checkbox";
  const label = h("label", { for: control.id }, text);
  const row = h(
    "div",
    { class: checkbox ? "field check" : "field" },
    checkbox ? [control, label] : [label, control],
    helpText,
    error,
  );
  row.showError = (message) => showError(error, message, control);
  return row;
}

/* An error slot placed beside the control an action belongs to. */
export function errorSlot(id) {
  return h("p", { class: "error", role: "alert", id, hidden: true });
}

export function showError(slot, message, control = null) {
  slot.textContent = message || "";
  slot.hidden = !message;
  if (control) {
    if (message) {
      control.setAttribute("aria-invalid", "true");
    } else {
      control.removeAttribute("aria-invalid");
    }
  }
}

/*
 * Run fn() for a button: disabled while it runs, its error slot cleared first and then filled
 * with the server's message (DFFMLHTTPError.message is the server's "error" string) on failure.
 * Resolves to fn's result, or undefined when it failed.
 */
export async function act(button, slot, fn) {
  showError(slot, "");
  const controls = [button].flat();
  controls.forEach((control) => {
    control.disabled = true;
  });
  controls[0]?.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } catch (error) {
    showError(slot, error && error.message ? error.message : String(error));
    if (error && error.status === 401) {
      // Not signed in, or the token expired: the session asks for a login.
      document.dispatchEvent(new Event("unauthorized"));
    }
    return undefined;
  } finally {
    controls.forEach((control) => {
      control.disabled = false;
    });
    controls[0]?.removeAttribute("aria-busy");
  }
}

export function formatBytes(size) {
  if (size < 1024) {
    return `${size} B`;
  }
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/* A <select> of options [value, text] pairs (or plain values). */
export function select(attributes, options, selected) {
  const element = h("select", attributes);
  setOptions(element, options, selected);
  return element;
}

export function setOptions(element, options, selected = element.value) {
  element.replaceChildren(
    ...options.map((option) => {
      const [value, text] = Array.isArray(option) ? option : [option, option];
      return h("option", { value, selected: value === selected }, text);
    }),
  );
}

/* A card: a titled section of a page; wide ones span the whole grid row. */
export function card(title, ...children) {
  const heading = h("h2", { id: newId("card") }, title);
  return h("section", { class: "card", "aria-labelledby": heading.id }, heading, ...children);
}

export function wideCard(title, ...children) {
  const element = card(title, ...children);
  element.classList.add("wide");
  return element;
}

/* Save a Blob under a file name through a temporary link. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/* Help text with ``code`` (reStructuredText) or `code` (Markdown) marks as <code>. */
export function prose(text) {
  const parts = String(text || "").split(/``([^`]+)``|`([^`]+)`/);
  const out = [];
  for (let i = 0; i < parts.length; i += 3) {
    if (parts[i]) {
      out.push(parts[i]);
    }
    const code = parts[i + 1] ?? parts[i + 2];
    if (code) {
      out.push(h("code", {}, code));
    }
  }
  return out;
}
