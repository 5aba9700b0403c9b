// The labels configured on the server, from GET /labels: every page lists its sources, models
// and module contexts from here, so labels configured by other clients (or before a restart)
// appear too.

const KINDS = ["source", "model", "scorer", "module"];

export class Labels extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.byKind = Object.fromEntries(KINDS.map((kind) => [kind, {}]));
    this.pending = null;
  }

  /*
   * Fetch GET /labels again; every open context becomes one entry {label, plugin, config}.
   * Calls made while one is under way share it. Pages hear "change".
   */
  refresh() {
    this.pending ||= this.api
      .labels()
      .then((all) => {
        for (const kind of KINDS) {
          const contexts = {};
          for (const [label, info] of Object.entries(all[kind] || {})) {
            for (const ctx of info.contexts || []) {
              contexts[ctx] = { label, plugin: info.plugin, config: info.config };
            }
          }
          this.byKind[kind] = contexts;
        }
        this.dispatchEvent(new Event("change"));
        return this;
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  /* A context this page just opened: shown at once, then confirmed by the server's list. */
  add(kind, ctx, info) {
    this.byKind[kind][ctx] = info;
    this.dispatchEvent(new Event("change"));
    return this.refresh().catch(() => {
      // The list could not be fetched: the context stays listed as this page opened it.
    });
  }

  list(kind) {
    return Object.keys(this.byKind[kind] || {}).sort();
  }

  get(kind, ctx) {
    return (this.byKind[kind] || {})[ctx];
  }
}
