// /api.js's pipeline calls against the real server: create a pipeline, start a run, follow
// its events to the end, read the jobs; a failing run, a retry and a cancel.
"use strict";

const assert = require("node:assert/strict");
const { after, before, describe, test } = require("node:test");

const { DFFMLHTTPAPI, DFFMLHTTPError } = require("../../service/web/static/api.js");
const { startServer } = require("./live-server.js");

const CSV = "x,y\n" + Array.from({ length: 20 }, (_, i) => `${i},${i % 3}`).join("\n") + "\n";

describe("api.js pipelines", () => {
  let server;
  let api;

  before(async () => {
    server = await startServer(["-upload-dir", "data"]);
    api = new DFFMLHTTPAPI(server.url);
    await api.configure("module", "dataset", "ds");
    await api.context("module", "ds");
    await api.upload("iris.csv", CSV);
    await api.upload("bad.csv", "a,b\n1,2\n3\n");
  });
  after(async () => {
    await server.stop();
  });

  test("create a pipeline, start a run and follow its events to FINISHED", async () => {
    const pipeline = await api.createPipeline("prepare", [
      { module: "ds", function: "split", options: { ratio: 0.75 } },
      { module: "ds", function: "describe", options: {} },
    ]);
    assert.equal(pipeline.name, "prepare");
    assert.equal((await api.pipeline(pipeline.id)).id, pipeline.id);
    const run = await api.startRun(pipeline.id, ["iris.csv"]);
    assert.deepEqual(
      run.jobs.map((job) => job.function),
      ["split", "describe"],
    );
    const events = [];
    const ended = await api.followRun(run.id, (event, data) => events.push({ event, data }));
    assert.equal(ended.status, "FINISHED");
    assert.ok(events.some(({ event, data }) => event === "job" && data.status === "FINISHED"));
    assert.ok(events.some(({ event, data }) => event === "log" && /train/.test(data.line)));
    const [split, describe] = ended.jobs;
    assert.deepEqual(
      split.output_files.map((file) => file.filename),
      [`outputs/run-${run.id}/job-0/iris.test.csv`, `outputs/run-${run.id}/job-0/iris.train.csv`],
    );
    assert.equal((await api.job(describe.id)).status, "FINISHED");
    const summary = await api.download(`outputs/run-${run.id}/job-1/iris.train.describe.json`);
    assert.equal(JSON.parse(await summary.text()).rows, 15);
    const listed = await api.runs({ pipeline: pipeline.id });
    assert.equal(listed.total, 1);
  });

  test("a failing first job cancels the second; retry and errors", async () => {
    const pipeline = await api.createPipeline("fails", [
      { module: "ds", function: "describe", options: {} },
      { module: "ds", function: "split", options: {} },
    ]);
    const run = await api.startRun(pipeline.id, ["bad.csv"]);
    const ended = await api.followRun(run.id);
    assert.equal(ended.status, "FAILED");
    assert.deepEqual(
      ended.jobs.map((job) => [job.status, job.error === null]),
      [
        ["FAILED", false],
        ["CANCELLED", false],
      ],
    );
    assert.equal(ended.jobs[0].error, "bad.csv line 3 has 1 fields, the header has 2");
    assert.equal(ended.jobs[1].error, "job 0 failed");
    const retried = await api.retryRun(run.id);
    assert.equal(retried.status, "PENDING");
    assert.equal((await api.followRun(run.id)).status, "FAILED");
    await assert.rejects(
      api.createPipeline("bad", [{ module: "nope", function: "split" }]),
      (error) =>
        error instanceof DFFMLHTTPError &&
        error.status === 400 &&
        error.message === "task 0: Module not loaded",
    );
    await assert.rejects(api.cancelRun(run.id), (error) => error.status === 409);
    await api.deletePipeline(pipeline.id);
    await assert.rejects(api.pipeline(pipeline.id), (error) => error.status === 404);
  });
});
