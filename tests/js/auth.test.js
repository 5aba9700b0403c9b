// The JavaScript client against a server run with -auth token: login(), {token}, logout().
"use strict";

const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const path = require("node:path");
const { after, before, describe, test } = require("node:test");

const { DFFMLHTTPAPI, DFFMLHTTPError } = require("../../service/web/static/api.js");
const { startServer, REPO } = require("./live-server.js");

const PYTHON = process.env.PYTHON || path.join(REPO, ".venv", "bin", "python");

describe("api.js with -auth token", () => {
  let server;

  before(async () => {
    server = await startServer(["-js", "-upload-dir", "data", "-auth", "token"]);
    for (const [command, name, password] of [
      ["createuser", "bob", "bob-password-1"],
      ["createuser", "ann", "ann-password-1"],
      ["createsuperuser", "root", "root-password-1"],
    ]) {
      execFileSync(
        PYTHON,
        ["-m", "service", command, "-username", name, "-upload-dir", "data", "-password-stdin"],
        { cwd: server.dir, input: `${password}\n`, env: { ...process.env, PYTHONPATH: REPO } },
      );
    }
  });
  after(async () => {
    await server.stop();
  });

  test("without a token every API call is a 401 DFFMLHTTPError", async () => {
    const api = new DFFMLHTTPAPI(server.url);
    await assert.rejects(api.list("models"), (error) => {
      assert.ok(error instanceof DFFMLHTTPError);
      assert.equal(error.status, 401);
      assert.equal(error.message, "Authorization: Bearer <token> required");
      return true;
    });
    assert.equal((await api.health()).status, "ok");
  });

  test("login, own files, another user's are invisible, logout", async () => {
    const bob = new DFFMLHTTPAPI(server.url);
    await assert.rejects(bob.login("bob", "wrong-password"), { status: 401 });
    const body = await bob.login("bob", "bob-password-1");
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.expires_in, 3600);
    assert.equal((await bob.me()).username, "bob");
    await bob.upload("mine.txt", "hello");
    assert.deepEqual(await bob.files(), [{ filename: "mine.txt", size: 5 }]);

    // A second client given the token in the constructor acts as bob too.
    const again = new DFFMLHTTPAPI(server.url, { token: body.access_token });
    assert.equal(await (await again.download("mine.txt")).text(), "hello");

    const ann = new DFFMLHTTPAPI(server.url);
    await ann.login("ann", "ann-password-1");
    assert.deepEqual(await ann.files(), []);
    await assert.rejects(ann.download("mine.txt"), { status: 404 });

    await bob.logout();
    assert.equal(bob.token, null);
    await assert.rejects(again.files(), { status: 401, message: "Invalid or expired token" });
  });

  test("an admin registers a user with rules of their own", async () => {
    const root = new DFFMLHTTPAPI(server.url);
    await root.login("root", "root-password-1");
    const made = await root.register("cy", "cy-password-1", { rules: ["list/models/get"] });
    assert.deepEqual(made, { username: "cy", admin: false, rules: ["list/models/get"] });
    const cy = new DFFMLHTTPAPI(server.url);
    await cy.login("cy", "cy-password-1");
    assert.ok(await cy.list("models"));
    await assert.rejects(cy.list("sources"), {
      status: 403,
      message: "Forbidden by this user's rules",
    });
    assert.deepEqual((await cy.me()).rules, ["list/models/get"]);
  });
});
