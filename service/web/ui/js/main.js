// The dashboard's shell: one client from api.js, the page router, shared state.

import { h } from "./dom.js";
import { FILES_LIST } from "./forms.js";
import { Session } from "./session.js";
import { Labels } from "./state.js";
import * as data from "./pages/data.js";
import * as models from "./pages/models.js";
import * as modules from "./pages/modules.js";
import * as pipelines from "./pages/pipelines.js";
import * as tasks from "./pages/tasks.js";

const PAGES = [data, models, modules, pipelines, tasks];

// The API lives where /ui/ is mounted: a page at PREFIX/ui/ talks to PREFIX/.
const endpoint = new URL("..", globalThis.location.href).href.replace(/\/+$/, "");
const api = new globalThis.DFFMLHTTPAPI(endpoint);

const listings = new Map();
const filesList = h("datalist", { id: FILES_LIST });
document.body.append(filesList);

const app = {
  api,
  labels: new Labels(api),
  events: new EventTarget(),
  // The context of each kind this page configured last: the one the other pages offer first.
  recent: {},
  files: [],

  /* /list/{kinds}, fetched once per page load. */
  listing(kinds) {
    if (!listings.has(kinds)) {
      const pending = api.list(kinds);
      pending.catch(() => listings.delete(kinds));
      listings.set(kinds, pending);
    }
    return listings.get(kinds);
  },

  /* The upload dir's files; every page that offers them hears "files". */
  async refreshFiles() {
    app.files = await api.files({ details: true });
    filesList.replaceChildren(...app.files.map((f) => h("option", { value: f.filename })));
    app.events.dispatchEvent(new Event("files"));
    return app.files;
  },
};

const nav = document.getElementById("nav");
const main = document.getElementById("main");
const mounted = new Map();

for (const page of PAGES) {
  nav.append(h("a", { href: `#${page.id}`, id: `nav-${page.id}` }, page.title));
}

function show() {
  const wanted = globalThis.location.hash.slice(1);
  const page = PAGES.find((p) => p.id === wanted) || PAGES[0];
  for (const link of nav.querySelectorAll("a")) {
    if (link.id === `nav-${page.id}`) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  if (!mounted.has(page.id)) {
    const heading = h("h1", { tabindex: "-1" }, page.title);
    const root = h("section", { id: `page-${page.id}`, class: "page" }, heading);
    main.append(root);
    page.mount(root, app);
    mounted.set(page.id, { root, heading });
  }
  for (const other of PAGES) {
    const shown = mounted.get(other.id);
    if (shown && other.id !== page.id && !shown.root.hidden) {
      shown.root.hidden = true;
      other.hide?.(app);
    }
  }
  mounted.get(page.id).root.hidden = false;
  document.title = `${page.title} · dffml-service-http`;
  page.show?.(app);
  return mounted.get(page.id);
}

async function start() {
  // With -auth token nothing is shown until the user has signed in.
  await new Session(app, document.getElementById("session")).ready().catch(() => {
    // The server did not answer the probe: the pages show its errors where they happen.
  });
  globalThis.addEventListener("hashchange", () => show().heading.focus());
  // The labels on the server (GET /labels): the pages' lists of sources, models and modules.
  await app.labels.refresh().catch(() => {
    // Listed again after the next configure; meanwhile the pages show what they open.
  });
  show();
  app.refreshFiles().catch(() => {
    // No -upload-dir (501): the Data page says so when it lists files.
  });
  document.body.dataset.ready = "true";
}

start();
