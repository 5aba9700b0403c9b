// A page written for the original DFFML /api.js runs unchanged against the /api.js this server
// serves: the original's JavaScript example flow (upload CSVs, configure csv and a model through
// api.source() / api.model(), page records, update one, train, accuracy, predict and compare
// with ===), plus api.scorer(), api.request(path, options) and errors thrown as Error.
"use strict";

const assert = require("node:assert/strict");
const vm = require("node:vm");
const { after, before, describe, test } = require("node:test");

const { startServer } = require("./live-server.js");

const TRAINING_CSV =
  "Years,Expertise,Trust,Salary\n0,1,0.2,10\n1,3,0.4,20\n2,5,0.6,30\n3,7,0.8,40\n";
const TEST_CSV = "Years,Expertise,Trust,Salary\n4,9,1.0,50\n5,11,1.2,60\n";

// DFFML's nested config body, as the original's clients send it.
const nested = (kind, config) => ({
  [kind]: {
    plugin: null,
    config: Object.fromEntries(
      Object.entries(config).map(([name, value]) => [name, { plugin: value, config: {} }]),
    ),
  },
});

describe("the original client's object API", () => {
  let server;
  let page;
  let sent;

  before(async () => {
    server = await startServer(["-js", "-upload-dir", "data"]);
    // The script as a browser page loads it: from the server, into a global scope of its own.
    const code = await (await fetch(`${server.url}/api.js`)).text();
    sent = [];
    const spy = (url, init = {}) => {
      sent.push({ url: String(url), init });
      return fetch(url, init);
    };
    page = { fetch: spy, FormData, Blob, Headers, location: { origin: server.url } };
    vm.runInNewContext(code, page);
  });
  after(async () => {
    await server.stop();
  });

  test("the original's JavaScript example flow", async () => {
    const api = new page.DFFMLHTTPAPI(server.url);

    const trainingSource = api.source();
    assert.deepEqual(await api.upload("my_training_dataset.csv", TRAINING_CSV), { error: null });
    assert.deepEqual(
      await trainingSource.configure(
        "csv",
        "my_training_dataset",
        nested("source", { filename: ["my_training_dataset.csv"] }),
      ),
      { error: null },
    );
    assert.equal(trainingSource.plugin, "csv");
    assert.equal(trainingSource.label, "my_training_dataset");
    const trainingCtx = await trainingSource.context("my_training_dataset_context");
    assert.equal(trainingCtx.label, "my_training_dataset_context");
    assert.equal(trainingCtx.parent, trainingSource);
    assert.equal(trainingCtx.api, api);

    const testSource = api.source();
    await api.upload("my_test_dataset.csv", TEST_CSV);
    await testSource.configure(
      "csv",
      "my_test_dataset",
      nested("source", { filename: ["my_test_dataset.csv"] }),
    );
    const testCtx = await testSource.context("my_test_dataset_context");

    const records = await trainingCtx.records(100);
    assert.deepEqual(Object.keys(records), ["0", "1", "2", "3"]);
    assert.deepEqual(records["2"].features, { Years: 2, Expertise: 5, Trust: 0.6, Salary: 30 });
    const firstTwo = await trainingCtx.records(2);
    assert.deepEqual(Object.keys(firstTwo), ["0", "1"]);

    // An update on a source configured without readwrite is kept in memory, as the original does.
    const updated = { key: "3", features: { ...records["3"].features, Trust: 0.8 } };
    assert.deepEqual(await trainingCtx.update(updated), { error: null });
    assert.deepEqual((await trainingCtx.record("3")).features, updated.features);

    const model = api.model();
    await model.configure(
      "scikitlr",
      "mymodel",
      nested("model", {
        predict: [{ name: "Salary", dtype: "int", length: 1 }],
        features: [
          { name: "Years", dtype: "int", length: 1 },
          { name: "Expertise", dtype: "int", length: 1 },
          { name: "Trust", dtype: "float", length: 1 },
        ],
      }),
    );
    const modelCtx = await model.context("mymodel_context");
    assert.deepEqual(await modelCtx.train([trainingCtx]), { error: null });
    const accuracy = await modelCtx.accuracy([testCtx]);
    assert.equal(typeof accuracy, "number");
    assert.ok(accuracy > 0.99, `accuracy ${accuracy}`);

    const prediction = await modelCtx.predict({
      mish_the_smish: { features: { Years: 6, Expertise: 13, Trust: 1.4 } },
    });
    assert.equal(prediction.mish_the_smish.prediction.Salary.value, 70);
    assert.ok(prediction.mish_the_smish.prediction.Salary.value === 70, "=== 70, an integer");
  });

  test("string features, predict as one value, and a scorer", async () => {
    const api = new page.DFFMLHTTPAPI(server.url);
    const source = api.source();
    await api.upload("line.csv", TRAINING_CSV);
    await source.configure("csv", "line", { filename: "line.csv" });
    const sourceCtx = await source.context("line");
    const model = api.model();
    await model.configure(
      "slr",
      "slr",
      nested("model", { features: ["Years:int:1"], predict: "Salary:int:1" }),
    );
    const modelCtx = await model.context("slr");
    await modelCtx.train([sourceCtx]);
    const predicted = await modelCtx.predict({ a: { features: { Years: 6 } } });
    assert.ok(predicted.a.prediction.Salary.value === 70);

    const scorer = api.scorer();
    assert.deepEqual(await scorer.configure("mse", "mse", {}), { error: null });
    const scorerCtx = await scorer.context("mse");
    const mse = await scorerCtx.score(modelCtx, [sourceCtx]);
    assert.equal(mse, 0);
  });

  test("errors are thrown as Error with the server's message", async () => {
    const api = new page.DFFMLHTTPAPI(server.url);
    const PageError = vm.runInContext("Error", page);
    const check = (message) => (error) => {
      assert.ok(error instanceof PageError, "an Error of the page");
      assert.equal(error.message, message);
      return true;
    };
    await assert.rejects(api.source().configure("nope", "x", {}), check("source nope not found"));
    await assert.rejects(
      api.source().configure("csv", "salary", nested("source", { filname: ["typo.csv"] })),
      check("CSVSource missing 'filename' from source.salary"),
    );
    const unconfigured = api.model();
    unconfigured.label = "ghost";
    await assert.rejects(unconfigured.context("g"), check("ghost model not found"));
    const source = api.source();
    await source.configure("memory", "empty", { records: {} });
    const ctx = await source.context("empty");
    const model = api.model();
    await model.configure("slr", "untrained", { features: ["Years"], predict: "Salary" });
    const modelCtx = await model.context("untrained");
    await assert.rejects(modelCtx.train([]), check("No source context labels given"));
    await assert.rejects(modelCtx.predict({ a: { features: { Years: 1 } } }), check("Model not trained"));
    await assert.rejects(modelCtx.train([ctx]), check("No records to train on"));
  });

  test("api.request(path, options) resolves to the raw Response", async () => {
    const api = new page.DFFMLHTTPAPI(server.url);
    const response = await api.request("/list/sources");
    assert.equal(response.status, 200);
    assert.ok("csv" in (await response.json()));
    const posted = await api.request("/configure/source/memory/raw", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ records: { a: { features: { x: 1 } } } }),
    });
    assert.deepEqual(await posted.json(), { error: null });
    await assert.rejects(api.request("/source/nowhere/record/a"), { message: "Source not loaded" });
    // The project's flat form is the same method with a method name first: the parsed body.
    assert.equal((await api.request("GET", "/health")).status, "ok");
  });

  test("requests go out with the original's fetch options", async () => {
    const api = new page.DFFMLHTTPAPI(server.url);
    sent.length = 0;
    const source = api.source();
    await source.configure("memory", "opts", { records: {} });
    const [{ url, init }] = sent;
    assert.equal(url, `${server.url}/configure/source/memory/opts`);
    assert.equal(init.method, "POST");
    assert.equal(init.mode, "cors");
    assert.equal(init.credentials, "omit");
    assert.equal(init.cache, "no-cache");
    assert.equal(init.redirect, "follow");
    assert.equal(init.referrerPolicy, "no-referrer");
    assert.equal(init.headers["content-type"], "application/json");
  });
});
