// What the dashboard knows beyond what the server lists: the labels it configured (the API has
// no route that lists configured labels), kept in sessionStorage so a reload keeps them.

const KEY = "dffml-service-http-ui/labels";

export class Labels extends EventTarget {
  constructor(storage = globalThis.sessionStorage) {
    super();
    this.storage = storage;
    this.byKind = { source: {}, model: {}, scorer: {}, module: {} };
    try {
      Object.assign(this.byKind, JSON.parse(storage.getItem(KEY) || "{}"));
    } catch (_) {
      // Unreadable (another version's): start empty; the server's labels are unaffected.
    }
  }

  /* Remember context ctx of kind, with what it was configured from ({plugin, config}). */
  add(kind, ctx, info) {
    this.byKind[kind][ctx] = info;
    this.save();
  }

  remove(kind, ctx) {
    delete this.byKind[kind][ctx];
    this.save();
  }

  list(kind) {
    return Object.keys(this.byKind[kind]).sort();
  }

  get(kind, ctx) {
    return this.byKind[kind][ctx];
  }

  save() {
    try {
      this.storage.setItem(KEY, JSON.stringify(this.byKind));
    } catch (_) {
      // Storage full or disabled: the labels still live for this page.
    }
    this.dispatchEvent(new Event("change"));
  }
}
