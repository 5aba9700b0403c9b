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
              // Models: whether this context has something to predict with (the server's word).
              const trained = info.trained ? info.trained.includes(ctx) : undefined;
              contexts[ctx] = { label, plugin: info.plugin, config: info.config, trained };
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

  /* The feature names of a source context's first record (fetched once per context). */
  sourceFeatures(ctx) {
    this.features ||= new Map();
    if (!this.features.has(ctx)) {
      const pending = (async () => {
        const pages = this.api.recordPages(ctx, 1);
        try {
          const first = await pages.next();
          const record = first.done ? null : Object.values(first.value.records)[0];
          return new Set(Object.keys((record && record.features) || {}));
        } finally {
          // Releases the server's cursor.
          await pages.return();
        }
      })();
      pending.catch(() => this.features.delete(ctx));
      this.features.set(ctx, pending);
    }
    return this.features.get(ctx);
  }

  /* The source contexts whose records have every one of names, in list order. */
  async sourcesWith(names) {
    const known = this.list("source");
    const fits = await Promise.all(
      known.map((ctx) => this.sourceFeatures(ctx).then((have) => names.every((n) => have.has(n)), () => false)),
    );
    return known.filter((_, i) => fits[i]);
  }

  /* A context this page just opened: shown at once, then confirmed by the server's list. */
  add(kind, ctx, info) {
    this.byKind[kind][ctx] = info;
    // A source configured again under the same name may read other records.
    this.features?.delete(ctx);
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
