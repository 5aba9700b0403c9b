// api.js's followRunEvents (the dashboard's addition): a run's events to its end, and a stream
// stopped by an AbortSignal while the run goes on.
"use strict";

const assert = require("node:assert/strict");
const { after, before, describe, test } = require("node:test");

const { DFFMLHTTPAPI } = require("../../service/web/static/api.js");
const { startServer } = require("./live-server.js");

const CSV = "x,y\n" + Array.from({ length: 20 }, (_, i) => `${i},${i % 3}`).join("\n") + "\n";

describe("api.js followRunEvents", () => {
  let server;
  let api;
  let pipeline;

  before(async () => {
    server = await startServer(["-upload-dir", "data"]);
    api = new DFFMLHTTPAPI(server.url);
    await api.configure("module", "dataset", "ds");
    await api.context("module", "ds");
    await api.upload("t.csv", CSV);
    pipeline = await api.createPipeline("split-describe", [
      { module: "ds", function: "split", options: { ratio: 0.75 } },
      { module: "ds", function: "describe", options: {} },
    ]);
  });
  after(async () => {
    await server.stop();
  });

  test("follows status, job and log events to the run's end", async () => {
    const run = await api.startRun(pipeline.id, ["t.csv"]);
    const seen = [];
    const ended = await api.followRunEvents(run.id, {
      onEvent: (event, data) => seen.push([event, data]),
    });
    assert.equal(ended.status, "FINISHED");
    assert.equal(ended.id, run.id);
    assert.deepEqual(seen[0][0], "status");
    assert.deepEqual(seen.at(-1), ["status", ended]);
    const finishedJobs = seen.filter(([e, d]) => e === "job" && d.status === "FINISHED");
    assert.deepEqual(finishedJobs.map(([, d]) => d.task), [0, 1]);
    const logs = seen.filter(([e]) => e === "log").map(([, d]) => [d.task, d.line]);
    assert.deepEqual(logs[0], [0, "t.csv: 15 train, 5 test rows"]);
    // The stored job logs hold each line once, as it streamed.
    const jobs = (await api.run(run.id)).jobs;
    assert.deepEqual(jobs[0].logs, ["t.csv: 15 train, 5 test rows"]);
  });

  test("an AbortSignal stops following; the run goes on to its end", async () => {
    const run = await api.startRun(pipeline.id, ["t.csv"]);
    const controller = new AbortController();
    const seen = [];
    await assert.rejects(
      api.followRunEvents(run.id, {
        signal: controller.signal,
        onEvent: (event) => {
          seen.push(event);
          controller.abort();
        },
      }),
      { name: "AbortError" },
    );
    assert.deepEqual(seen, ["status"]);
    const ended = await api.followRunEvents(run.id);
    assert.equal(ended.status, "FINISHED");
    // The stream left behind met a closed connection: no error, no traceback in the log.
    await api.health();
    assert.doesNotMatch(server.stderr(), /Unhandled error|Traceback/);
  });

  test("an unknown run is the server's 404", async () => {
    await assert.rejects(api.followRunEvents("nope"), { status: 404 });
  });
});
