// The JavaScript client (/api.js) against the real server, in Node's own fetch.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const { after, before, describe, test } = require("node:test");

const { DFFMLHTTPAPI, DFFMLHTTPError } = require("../../service/web/static/api.js");
const { startServer } = require("./live-server.js");

const PEOPLE = {
  ann: { features: { Years: 1, Salary: 20 } },
  bob: { features: { Years: 2, Salary: 30 } },
  cid: { features: { Years: 3, Salary: 40 } },
};

describe("api.js", () => {
  let server;
  let api;

  before(async () => {
    server = await startServer(["-js", "-upload-dir", "data"]);
    api = new DFFMLHTTPAPI(server.url);
  });
  after(async () => {
    await server.stop();
  });

  // What several tests use, set up by each test that uses it (configuring a label again
  // replaces it), so every test stands alone (tests/test_js_standalone.py runs each by itself).
  const SEVEN = {};
  for (let i = 0; i < 7; i += 1) {
    SEVEN[`k${i}`] = { features: { Years: i, Salary: 10 * i + 10 } };
  }
  async function sevenSource() {
    await api.configure("source", "memory", "seven", { records: SEVEN });
    await api.context("source", "seven", "seven");
    return "seven";
  }
  async function lineModel() {
    await api.configure("model", "slr", "line", {
      features: ["Years:int:1"],
      predict: "Salary:int:1",
      location: "models/line",
    });
    await api.context("model", "line", "line");
    return "line";
  }

  test("the server serves the client it ships, usable as a browser script", async () => {
    const response = await fetch(`${server.url}/api.js`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /^text\/javascript/);
    const code = await response.text();
    const shipped = fs.readFileSync(path.join(__dirname, "../../service/web/static/api.js"), "utf8");
    assert.equal(code, shipped);

    // A page's global scope: no module object, the page's origin as the default endpoint.
    const page = { fetch, FormData, Blob, location: { origin: server.url } };
    vm.runInNewContext(code, page);
    const inPage = new page.DFFMLHTTPAPI();
    assert.equal(inPage.endpoint, server.url);
    assert.equal((await inPage.health()).status, "ok");
  });

  test("upload, list, download and delete files", async () => {
    fs.mkdirSync(path.join(server.dir, "data", "sub"));
    assert.deepEqual(await api.upload("sub/my data é.csv", "Years,Salary\n1,20\n"), {
      error: null,
    });
    await api.upload("b.bin", new Uint8Array([0, 1, 2, 255]));
    await api.upload("c.txt", new Blob(["blob"]));
    assert.deepEqual(await api.files(), [
      { filename: "b.bin", size: 4 },
      { filename: "c.txt", size: 4 },
      { filename: "sub/my data é.csv", size: 18 },
    ]);
    const blob = await api.download("sub/my data é.csv");
    assert.equal(await blob.text(), "Years,Salary\n1,20\n");
    assert.deepEqual([...new Uint8Array(await (await api.download("b.bin")).arrayBuffer())], [
      0, 1, 2, 255,
    ]);

    await assert.rejects(api.upload("c.txt", "again", { overwrite: false }), (error) => {
      assert.ok(error instanceof DFFMLHTTPError);
      assert.equal(error.status, 409);
      assert.match(error.message, /^File exists: c\.txt/);
      return true;
    });
    await api.deleteFile("c.txt");
    await api.deleteFile("b.bin");
    await assert.rejects(api.download("c.txt"), {
      name: "DFFMLHTTPError",
      status: 404,
      message: "File not found: c.txt",
    });
    await assert.rejects(api.upload("nodir/x.csv", "x"), {
      status: 400,
      message:
        "Directory 'nodir' does not exist in the upload directory " +
        "(the server creates no directories)",
    });
  });

  test("list, configure, context and release", async () => {
    const sources = await api.list("sources");
    assert.ok("memory" in sources);
    assert.deepEqual(await api.configure("source", "memory", "people", { records: PEOPLE }), {
      error: null,
    });
    assert.deepEqual(await api.context("source", "people", "people"), { error: null });
    assert.deepEqual(await api.releaseContext("source", "people"), { error: null });
    await assert.rejects(api.releaseContext("source", "people"), {
      status: 404,
      message: "Source not loaded",
    });
    assert.deepEqual(await api.release("source", "people"), { error: null });
  });

  test("records page with iterkeys as an async iterator", async () => {
    const seven = SEVEN;
    await sevenSource();

    const keys = [];
    for await (const record of api.records("seven", 3)) {
      keys.push(record.key);
      assert.deepEqual(record.features, seven[record.key].features);
    }
    assert.deepEqual(keys, ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);

    const pages = [];
    for await (const page of api.recordPages("seven", 3)) {
      pages.push(Object.keys(page.records).length);
    }
    assert.deepEqual(pages, [3, 3, 1]);

    assert.deepEqual(await api.record("seven", "k2"), {
      key: "k2",
      features: { Years: 2, Salary: 30 },
      extra: {},
    });
    assert.deepEqual(await api.record("seven", "nobody"), { key: "nobody" });
    await api.update("seven", "k2", { features: { Years: 2, Salary: 33 } });
    assert.equal((await api.record("seven", "k2")).features.Salary, 33);
    await assert.rejects(api.record("nowhere", "k2"), { status: 404, message: "Source not loaded" });
  });

  test("records stream as NDJSON in one response", async () => {
    await sevenSource();
    const keys = [];
    for await (const record of api.recordStream("seven")) {
      keys.push(record.key);
      assert.equal(typeof record.features.Years, "number");
    }
    assert.deepEqual(keys, ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);
    for await (const record of api.recordStream("seven")) {
      assert.equal(record.key, "k0");
      break;
    }
    // Enough records that lines straddle the reads of the response body.
    const many = {};
    for (let i = 0; i < 3000; i += 1) {
      many[`r${i}`] = { features: { Years: i, note: "é".repeat(i % 50) } };
    }
    await api.configure("source", "memory", "many", { records: many });
    await api.context("source", "many", "many");
    let count = 0;
    for await (const record of api.recordStream("many")) {
      assert.deepEqual(record.features, many[record.key].features);
      count += 1;
    }
    assert.equal(count, 3000);
    await api.release("source", "many");

    await assert.rejects(api.recordStream("nowhere").next(), {
      status: 404,
      message: "Source not loaded",
    });
  });

  test("leaving a records loop early releases the server's cursor", async () => {
    await sevenSource();
    const sent = [];
    const spy = new DFFMLHTTPAPI(server.url, {
      fetch: (url, init) => {
        sent.push(`${init.method} ${url.slice(server.url.length)}`);
        return fetch(url, init);
      },
    });
    for await (const record of spy.records("seven", 2)) {
      assert.equal(record.key, "k0");
      break;
    }
    assert.equal(sent.length, 2);
    assert.equal(sent[0], "GET /source/seven/records/2");
    const [, released] = sent[1].match(/^DELETE \/source\/seven\/records\/(.+)$/);
    await assert.rejects(
      api.request("GET", `/source/seven/records/${encodeURIComponent(released)}/2`),
      { status: 404, message: "iterkey not found" },
    );
  });

  test("train, score and predict, in one response and in chunks", async () => {
    await sevenSource();
    await lineModel();
    await assert.rejects(api.predict("line", { a: { features: { Years: 1 } } }), {
      status: 400,
      message: "Model not trained",
    });
    await assert.rejects(api.train("line", []), {
      status: 400,
      message: "No source context labels given",
    });
    assert.deepEqual(await api.train("line", ["seven"]), { error: null });

    await api.configure("scorer", "mse", "mse");
    await api.context("scorer", "mse", "mse");
    const mse = await api.score("mse", "line", ["seven"]);
    assert.equal(typeof mse, "number");
    assert.ok(mse >= 0 && mse < 10, `mse ${mse}`);
    assert.equal(typeof (await api.accuracy("line", ["seven"])), "number");

    const predicted = await api.predict("line", { ten: { features: { Years: 10 } } });
    assert.deepEqual(Object.keys(predicted), ["ten"]);
    assert.ok(Math.abs(predicted.ten.prediction.Salary.value - 110) < 2);

    const inputs = {};
    for (let i = 0; i < 5; i += 1) {
      inputs[`p${i}`] = { features: { Years: i } };
    }
    const chunked = [];
    for await (const record of api.predictions("line", inputs, 2)) {
      chunked.push(record.key);
      assert.equal(typeof record.prediction.Salary.value, "number");
    }
    assert.deepEqual(chunked, ["p0", "p1", "p2", "p3", "p4"]);

    const fromSource = [];
    for await (const record of api.predictSource("line", "seven", 3)) {
      fromSource.push(record.key);
    }
    assert.deepEqual(fromSource, ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);
  });

  test("leaving a predictions loop early releases the server's cursor", async () => {
    await sevenSource();
    await lineModel();
    assert.deepEqual(await api.train("line", ["seven"]), { error: null });
    const sent = [];
    const spy = new DFFMLHTTPAPI(server.url, {
      fetch: (url, init) => {
        sent.push(`${init.method} ${url.slice(server.url.length)}`);
        return fetch(url, init);
      },
    });
    for await (const record of spy.predictSource("line", "seven", 2)) {
      assert.equal(record.key, "k0");
      break;
    }
    assert.equal(sent[0], "POST /model/line/predict/2?source=seven");
    const [, released] = sent[1].match(/^DELETE \/model\/line\/predict\/(.+)$/);
    await assert.rejects(
      api.request("GET", `/model/line/predict/${encodeURIComponent(released)}/2`),
      { status: 404, message: "iterkey not found" },
    );
  });

  test("run a module function over an uploaded file", async () => {
    let csv = "Years,Salary\n";
    for (let i = 0; i < 10; i += 1) {
      csv += `${i},${10 * i + 10}\n`;
    }
    await api.upload("ten.csv", csv);
    await api.configure("module", "dataset", "ds");
    await api.context("module", "ds", "ds");
    const run = await api.module("ds", "split", { files: ["ten.csv"], options: { ratio: 0.8 } });
    assert.equal(run.function, "split");
    const rows = Object.fromEntries(run.files.map((f) => [f.tags.part, f.tags.rows]));
    assert.deepEqual(rows, { train: 8, test: 2 });
    const train = run.files.find((f) => f.tags.part === "train").filename;
    assert.equal((await (await api.download(train)).text()).trim().split("\n").length, 9);
    await assert.rejects(api.module("ds", "nope", { files: ["ten.csv"] }), {
      status: 404,
      message: /^Function 'nope' not found \(available: .*split/,
    });
  });

  test("errors carry the server's message and status", async () => {
    await assert.rejects(api.configure("source", "nope", "x"), (error) => {
      assert.ok(error instanceof Error);
      assert.equal(error.message, "source nope not found");
      assert.equal(error.status, 404);
      assert.deepEqual(error.body, { error: "source nope not found" });
      return true;
    });
    await assert.rejects(api.context("source", "unknown"), {
      status: 404,
      message: "unknown source not found",
    });
  });

  test("requests are sent like the original client's", async () => {
    const sent = [];
    const spy = new DFFMLHTTPAPI(server.url, {
      fetch: (url, init) => {
        sent.push({ url, init });
        return fetch(url, init);
      },
      headers: { "X-Trace": "1" },
    });
    await spy.configure("source", "memory", "a/b c", { records: {} });
    await spy.upload("sp ace.txt", "x");
    const [configure, upload] = sent;
    assert.equal(configure.url, `${server.url}/configure/source/memory/a%2Fb%20c`);
    assert.equal(configure.init.method, "POST");
    assert.equal(configure.init.mode, "cors");
    assert.equal(configure.init.credentials, "omit");
    assert.equal(configure.init.headers["Content-Type"], "application/json");
    assert.equal(configure.init.headers["X-Trace"], "1");
    assert.equal(configure.init.body, JSON.stringify({ records: {} }));
    assert.equal(upload.url, `${server.url}/service/upload/sp%20ace.txt`);
    assert.ok(upload.init.body instanceof FormData);
    assert.equal(upload.init.headers["Content-Type"], undefined, "fetch sets the boundary");
  });

  test("an error page that is not JSON still becomes a DFFMLHTTPError", async () => {
    const proxy = new DFFMLHTTPAPI("http://proxy.invalid", {
      fetch: async () => new Response("<html>down</html>", { status: 502, statusText: "Bad Gateway" }),
    });
    await assert.rejects(proxy.health(), {
      name: "DFFMLHTTPError",
      status: 502,
      message: "HTTP 502 Bad Gateway",
      body: null,
    });
  });
});
