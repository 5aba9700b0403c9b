// api.js's task methods (trainAsync, task, tasks, waitTask, cancelTask) against the real server.
"use strict";

const assert = require("node:assert/strict");
const { after, before, describe, test } = require("node:test");

const { DFFMLHTTPAPI, DFFMLHTTPError } = require("../../service/web/static/api.js");
const { startServer } = require("./live-server.js");

const LINE = { features: ["Years:int:1"], predict: "Salary:float:1" };

function lineRecords(n) {
  const records = {};
  for (let i = 0; i < n; i += 1) {
    records[String(i)] = { features: { Years: i, Salary: 10 * i + 10 } };
  }
  return records;
}

describe("api.js tasks", () => {
  let server;
  let api;

  before(async () => {
    server = await startServer(["-upload-dir", "data"]);
    api = new DFFMLHTTPAPI(server.url);
    await api.configure("source", "memory", "line", { records: lineRecords(30) });
    await api.context("source", "line");
  });

  // Each test configures (and where it needs one, trains) its own model: every test stands
  // alone (tests/test_js_standalone.py runs each by itself).
  async function model(label, { trained = false } = {}) {
    await api.configure("model", "scikitrfr", label, { ...LINE, n_estimators: 20 });
    await api.context("model", label);
    if (trained) {
      assert.deepEqual(await api.train(label, ["line"]), { error: null });
    }
    return label;
  }
  after(async () => {
    await server.stop();
  });

  test("trainAsync + waitTask follows the events with progress to SUCCESS", async () => {
    const m = await model("m");
    const accepted = await api.trainAsync(m, ["line"]);
    assert.equal(accepted.status, "PENDING");
    assert.equal(accepted.location, `/task/${accepted.task_id}`);
    const progress = [];
    const statuses = [];
    const task = await api.waitTask(accepted.task_id, {
      onProgress: (p) => progress.push(p),
      onStatus: (t) => statuses.push(t.status),
    });
    assert.equal(task.status, "SUCCESS");
    assert.deepEqual(task.result, { error: null });
    assert.ok(progress.some((p) => p.message === "trees grown"), JSON.stringify(progress));
    assert.equal(statuses.at(-1), "SUCCESS");
    const predicted = await api.predict(m, { a: { features: { Years: 3 } } });
    assert.ok(predicted.a.prediction.Salary.value > 0);
  });

  test("waitTask polls when asked to, and task/tasks show what ran", async () => {
    const accepted = await api.accuracyAsync(await model("scored", { trained: true }), ["line"]);
    const seen = [];
    const task = await api.waitTask(accepted.task_id, {
      events: false,
      interval: 50,
      onStatus: (t) => seen.push(t.status),
    });
    assert.equal(task.status, "SUCCESS");
    assert.equal(typeof task.result.accuracy, "number");
    assert.equal(seen.at(-1), "SUCCESS");
    assert.deepEqual(await api.task(accepted.task_id), task);
    const listed = await api.tasks({ kind: "accuracy" });
    assert.equal(listed.total, 1);
    assert.equal(listed.tasks[0].task_id, accepted.task_id);
  });

  test("a finished task cannot be cancelled; errors carry status and message", async () => {
    const m = await model("predicting", { trained: true });
    const accepted = await api.predictAsync(m, { a: { features: { Years: 1 } } });
    const task = await api.waitTask(accepted.task_id);
    assert.equal(task.status, "SUCCESS");
    assert.ok(task.result.records.a.prediction);
    await assert.rejects(api.cancelTask(accepted.task_id), (error) => {
      assert.ok(error instanceof DFFMLHTTPError);
      assert.equal(error.status, 409);
      assert.match(error.message, /^Task already finished/);
      return true;
    });
    await assert.rejects(api.task("nope"), { status: 404, message: "Task not found" });
    await assert.rejects(api.waitTask("nope"), { status: 404, message: "Task not found" });
  });
});
