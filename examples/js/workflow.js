/*
 * The salary example, shared by the Node script (salaries.js) and the browser page (index.html):
 * upload a CSV, serve it as a csv source, page through its records with iterkeys, train a
 * simple linear regression on it, score it with mean squared error, and predict every record.
 *
 * Everything goes through the client the server ships at /api.js (an instance is passed in).
 */
(function (root, factory) {
  "use strict";
  const exported = factory();
  if (typeof module === "object" && module && module.exports) {
    module.exports = exported;
  }
  root.runSalaries = exported.runSalaries;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const FEATURE = "Years";
  const TARGET = "Salary";

  /*
   * api: a DFFMLHTTPAPI; csv: the file's content (string or Blob).
   * options.log(step): called with a short description before each step.
   * options.chunkSize: records per page when reading the source back (small, to show paging).
   * Resolves to {records, pages, mse, predictions: [{key, actual, predicted, confidence}]}.
   */
  async function runSalaries(api, csv, options = {}) {
    const log = options.log || (() => {});
    const chunkSize = options.chunkSize || 5;
    const filename = options.filename || "salaries.csv";

    log(`upload ${filename}`);
    await api.upload(filename, csv);

    log("configure the csv source 'salaries' and open its context");
    await api.configure("source", "csv", "salaries", { filename });
    await api.context("source", "salaries", "salaries");

    log(`read the records back, ${chunkSize} a page`);
    const records = [];
    let pages = 0;
    for await (const page of api.recordPages("salaries", chunkSize)) {
      pages += 1;
      records.push(...Object.values(page.records));
    }

    log("configure the model 'salary_model' (slr) and open its context");
    await api.configure("model", "slr", "salary_model", {
      features: [`${FEATURE}:int:1`],
      predict: `${TARGET}:int:1`,
      location: options.location || "salary_model",
    });
    await api.context("model", "salary_model", "salary_model");

    log("train on the source");
    await api.train("salary_model", ["salaries"]);

    log("score with mean squared error");
    await api.configure("scorer", "mse", "mse", {});
    await api.context("scorer", "mse", "mse");
    const mse = await api.score("mse", "salary_model", ["salaries"]);

    log("predict every record from its Years");
    const inputs = {};
    for (const record of records) {
      inputs[record.key] = { features: { [FEATURE]: record.features[FEATURE] } };
    }
    const predicted = await api.predict("salary_model", inputs);
    const predictions = records.map((record) => {
      const prediction = predicted[record.key].prediction[TARGET];
      return {
        key: record.key,
        years: record.features[FEATURE],
        actual: record.features[TARGET],
        predicted: prediction.value,
        confidence: prediction.confidence,
      };
    });
    return { records, pages, mse, predictions };
  }

  return { runSalaries };
});
