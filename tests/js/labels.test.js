// api.js's labels() and contexts(kind) (the dashboard's additions) against the real server.
"use strict";

const assert = require("node:assert/strict");
const { after, before, describe, test } = require("node:test");

const { DFFMLHTTPAPI } = require("../../service/web/static/api.js");
const { startServer } = require("./live-server.js");

describe("api.js labels", () => {
  let server;
  let api;

  before(async () => {
    server = await startServer(["-upload-dir", "data"]);
    api = new DFFMLHTTPAPI(server.url);
  });
  after(async () => {
    await server.stop();
  });

  test("labels() lists every kind; contexts(kind) the open contexts with their plugin", async () => {
    const empty = await api.labels();
    for (const kind of ["source", "model", "scorer", "module"]) {
      assert.deepEqual(empty[kind], {}, kind);
    }
    assert.deepEqual(await api.contexts("source"), []);

    const records = { a: { features: { x: 1 } } };
    await api.configure("source", "memory", "mem", { records });
    await api.context("source", "mem", "zeta");
    await api.context("source", "mem", "alpha");
    await api.configure("model", "slr", "line", { features: ["x:int:1"], predict: "y:float:1" });

    const labels = await api.labels();
    assert.equal(labels.source.mem.plugin, "memory");
    assert.deepEqual(labels.source.mem.config, { records });
    assert.deepEqual(labels.source.mem.contexts, ["alpha", "zeta"]);
    assert.equal(labels.model.line.plugin, "slr");
    assert.deepEqual(labels.model.line.contexts, []);

    assert.deepEqual(await api.contexts("source"), [
      { ctx: "alpha", label: "mem", plugin: "memory", config: { records } },
      { ctx: "zeta", label: "mem", plugin: "memory", config: { records } },
    ]);
    // A configured label without an open context is no context to use.
    assert.deepEqual(await api.contexts("model"), []);
    assert.deepEqual(await api.contexts("nothing"), []);

    await api.releaseContext("source", "zeta");
    assert.deepEqual((await api.contexts("source")).map((c) => c.ctx), ["alpha"]);
    await api.release("source", "mem");
    assert.deepEqual(await api.contexts("source"), []);
  });
});
