#!/usr/bin/env node
/*
 * The salary example from Node (>= 18): upload a CSV, page through it, train, score, predict.
 *
 *   dffml-service-http server -insecure -upload-dir ./data &
 *   node examples/js/salaries.js --url http://127.0.0.1:8080
 *
 * For an HTTPS server with a self-signed certificate, trust it with Node's own variable:
 *   NODE_EXTRA_CA_CERTS=server.pem node examples/js/salaries.js --url https://127.0.0.1:8080
 *
 * The client is the file the server serves at /api.js (service/web/static/api.js in this repository).
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { parseArgs } = require("node:util");

const { DFFMLHTTPAPI } = require("../../service/web/static/api.js");
const { runSalaries } = require("./workflow.js");

const DEFAULT_CSV = path.join(__dirname, "..", "data", "salaries.csv");

// A DFFMLHTTPError carries the server's message and status; fetch's own failures (no server,
// an untrusted certificate) say what went wrong in their cause.
function describe(error) {
  if (error.status) {
    return `${error.message} (HTTP ${error.status})`;
  }
  const cause = error.cause;
  if (!cause) {
    return error.message;
  }
  const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(cause.code || "")
    ? " (trust the server's certificate with NODE_EXTRA_CA_CERTS=server.pem)"
    : "";
  return `${error.message}: ${cause.message}${hint}`;
}

async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: "string", default: "http://127.0.0.1:8080" },
      csv: { type: "string", default: DEFAULT_CSV },
      "chunk-size": { type: "string", default: "5" },
    },
  });
  const api = new DFFMLHTTPAPI(values.url);
  const result = await runSalaries(api, fs.readFileSync(values.csv, "utf8"), {
    chunkSize: Number(values["chunk-size"]),
    log: (step) => console.log(`- ${step}`),
  });
  console.log(`${result.records.length} records in ${result.pages} pages`);
  console.log(`mean squared error: ${result.mse.toFixed(3)}`);
  console.log("Years  Salary  predicted");
  for (const p of result.predictions) {
    console.log(
      `${String(p.years).padStart(5)}  ${String(p.actual).padStart(6)}  ${p.predicted.toFixed(1).padStart(9)}`,
    );
  }
  return result;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`error: ${describe(error)}`);
    process.exitCode = 1;
  });
}

module.exports = { main };
