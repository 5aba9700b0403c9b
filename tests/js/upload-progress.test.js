// api.uploadWithProgress (the dashboard's upload) in Node, where there is no XMLHttpRequest: it
// is upload() with one progress report once done, and the server's errors as for upload().
// The browser's XMLHttpRequest path is driven by tests/test_ui_browser.py.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { after, before, describe, test } = require("node:test");

const { DFFMLHTTPAPI, DFFMLHTTPError } = require("../../service/web/static/api.js");
const { startServer } = require("./live-server.js");

describe("api.uploadWithProgress without XMLHttpRequest", () => {
  let server;
  let api;

  before(async () => {
    server = await startServer(["-upload-dir", "data"]);
    api = new DFFMLHTTPAPI(server.url);
  });
  after(async () => {
    await server.stop();
  });

  test("uploads and reports the whole size once", async () => {
    const reports = [];
    const body = await api.uploadWithProgress("a.csv", "Years,Salary\n1,20\n", {
      onProgress: (sent, total) => reports.push([sent, total]),
    });
    assert.deepEqual(body, { error: null });
    assert.deepEqual(reports, [[18, 18]]);
    assert.equal(fs.readFileSync(path.join(server.dir, "data", "a.csv"), "utf8"), "Years,Salary\n1,20\n");
  });

  test("rejects with the server's error and reports nothing", async () => {
    await api.upload("taken.csv", "Years,Salary\n1,20\n");
    const reports = [];
    await assert.rejects(
      api.uploadWithProgress("taken.csv", "again", {
        overwrite: false,
        onProgress: (sent, total) => reports.push([sent, total]),
      }),
      (error) => {
        assert.ok(error instanceof DFFMLHTTPError);
        assert.equal(error.status, 409);
        assert.match(error.message, /^File exists: taken\.csv/);
        return true;
      },
    );
    assert.deepEqual(reports, []);
    assert.equal(
      fs.readFileSync(path.join(server.dir, "data", "taken.csv"), "utf8"),
      "Years,Salary\n1,20\n",
    );
  });
});
