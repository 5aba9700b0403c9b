// Start the real dffml-service-http CLI on 127.0.0.1 port 0 for a JavaScript test; stop it with
// SIGTERM. The Python interpreter is $PYTHON, else the repository's .venv.
"use strict";

const { execFileSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const REPO = path.resolve(__dirname, "..", "..");
const PYTHON = process.env.PYTHON || path.join(REPO, ".venv", "bin", "python");
const STARTUP_MS = 30000;

// Resolves to {url, dir, stop}; dir is a fresh directory the server runs in. With {tls: true}
// the server speaks HTTPS with a certificate made by `createtls server`, in dir/server.pem.
async function startServer(args = [], { tls = false } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dffml-http-js-"));
  const portfile = path.join(dir, "port");
  if (tls) {
    execFileSync(PYTHON, ["-m", "service", "createtls", "server"], {
      cwd: dir,
      env: { ...process.env, PYTHONPATH: REPO },
      stdio: "ignore",
    });
  }
  const child = spawn(
    PYTHON,
    ["-m", "service", "server", ...(tls ? [] : ["-insecure"]), "-port", "0",
      "-addr", "127.0.0.1", "-portfile", portfile, "-log", "WARNING", ...args],
    { cwd: dir, env: { ...process.env, PYTHONPATH: REPO }, stdio: ["ignore", "inherit", "pipe"] },
  );
  let spawnError = null;
  child.once("error", (error) => {
    spawnError = error;
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
    process.stderr.write(chunk);
  });
  const exited = new Promise((resolve) => child.once("close", resolve));
  const deadline = Date.now() + STARTUP_MS;
  while (!fs.existsSync(portfile)) {
    if (spawnError !== null) {
      throw new Error(`cannot start ${PYTHON}: ${spawnError.message}`);
    }
    if (child.exitCode !== null) {
      throw new Error(`server exited ${child.exitCode}: ${stderr}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("server did not start in time");
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const port = Number(fs.readFileSync(portfile, "utf8").trim());
  return {
    url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    dir,
    /* Everything the server wrote to stderr so far (its log). */
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), STARTUP_MS);
      await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startServer, REPO };
