// The Node example against the real server, started here on 127.0.0.1 port 0 and stopped after.
"use strict";

const assert = require("node:assert/strict");
const { execFile } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { after, before, describe, test } = require("node:test");
const { promisify } = require("node:util");

const { startServer } = require("../../tests/js/live-server.js");
const { main } = require("./salaries.js");

const SCRIPT = path.join(__dirname, "salaries.js");
const CSV = fs.readFileSync(path.join(__dirname, "..", "data", "salaries.csv"), "utf8");
const ROWS = CSV.trim().split("\n").slice(1).map((line) => line.split(",").map(Number));

describe("examples/js/salaries.js", () => {
  let server;

  before(async () => {
    server = await startServer(["-upload-dir", "data"]);
  });
  after(async () => {
    await server.stop();
  });

  test("uploads, pages, trains, scores and predicts every record", async (t) => {
    t.mock.method(console, "log", () => {});
    const result = await main(["--url", server.url, "--chunk-size", "6"]);

    assert.equal(fs.readFileSync(path.join(server.dir, "data", "salaries.csv"), "utf8"), CSV);
    assert.equal(result.records.length, ROWS.length);
    assert.equal(result.pages, Math.ceil(ROWS.length / 6));
    assert.ok(result.mse > 0 && result.mse < 50, `mse ${result.mse}`);
    assert.equal(result.predictions.length, ROWS.length);
    const truth = new Map(ROWS);
    for (const p of result.predictions) {
      assert.equal(p.actual, truth.get(p.years));
      // The data is 10·Years + 10 with noise of at most 7.
      assert.ok(Math.abs(p.predicted - (10 * p.years + 10)) < 5, JSON.stringify(p));
    }
  });

  test("runs from the command line", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, "--url", server.url]);
    assert.match(stdout, /^20 records in 4 pages$/m);
    assert.match(stdout, /^mean squared error: \d+\.\d{3}$/m);
  });
});

describe("examples/js/salaries.js against a server without -upload-dir", () => {
  test("exits 1 with the server's message", async () => {
    const server = await startServer([]);
    try {
      await assert.rejects(promisify(execFile)(process.execPath, [SCRIPT, "--url", server.url]), (error) => {
        assert.equal(error.code, 1);
        assert.equal(error.stderr.trim(), "error: Uploads not allowed (HTTP 501)");
        return true;
      });
    } finally {
      await server.stop();
    }
  });
});

describe("examples/js/salaries.js over HTTPS", () => {
  test("trusts a self-signed server with NODE_EXTRA_CA_CERTS, and says how when it does not", async () => {
    const server = await startServer(["-upload-dir", "data"], { tls: true });
    const run = (env) =>
      promisify(execFile)(process.execPath, [SCRIPT, "--url", server.url], {
        env: { ...process.env, ...env },
      });
    try {
      const { stdout } = await run({ NODE_EXTRA_CA_CERTS: path.join(server.dir, "server.pem") });
      assert.match(stdout, /^20 records in 4 pages$/m);
      await assert.rejects(run({ NODE_EXTRA_CA_CERTS: "" }), (error) => {
        assert.equal(error.code, 1);
        assert.match(error.stderr, /NODE_EXTRA_CA_CERTS=server\.pem/);
        return true;
      });
    } finally {
      await server.stop();
    }
  });
});
