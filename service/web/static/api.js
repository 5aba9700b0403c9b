/*
 * JavaScript client for dffml-service-http, served at /api.js when the server runs with -js.
 *
 * No dependencies: it needs fetch, FormData and Blob, which browsers and Node >= 18 provide.
 * In a page:   <script src="/api.js"></script>   then   new DFFMLHTTPAPI()
 * In Node:     const { DFFMLHTTPAPI } = require("./api.js");   new DFFMLHTTPAPI("http://127.0.0.1:8080")
 *
 * Every method returns a promise (or an async iterator) and rejects with a DFFMLHTTPError that
 * carries the server's "error" string as its message and the HTTP status as .status.
 */
(function (root, factory) {
  "use strict";
  const exported = factory();
  if (typeof module === "object" && module && module.exports) {
    module.exports = exported;
  }
  root.DFFMLHTTPAPI = exported.DFFMLHTTPAPI;
  root.DFFMLHTTPError = exported.DFFMLHTTPError;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  class DFFMLHTTPError extends Error {
    constructor(message, status, body) {
      super(message);
      this.name = "DFFMLHTTPError";
      this.status = status;
      this.body = body;
    }
  }

  // One URL path segment: labels, keys and iterkeys may contain "/", "?" or "%".
  const segment = (value) => encodeURIComponent(String(value));
  // A path inside the upload dir keeps its "/" separators.
  const filePath = (path) => String(path).split("/").map(segment).join("/");

  function defaultEndpoint() {
    const location = globalThis.location;
    return location && location.origin && location.origin !== "null" ? location.origin : "";
  }

  function asBlob(data) {
    if (data instanceof Blob) {
      return data;
    }
    if (typeof data === "string" || data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
      return new Blob([data]);
    }
    throw new TypeError("upload data must be a Blob, File, string, ArrayBuffer or typed array");
  }

  class DFFMLHTTPAPI {
    /*
     * endpoint: the server's base URL ("https://host:8080", or a prefix behind a proxy);
     *   in a browser it defaults to the page's own origin.
     * options.fetch: a fetch implementation to use instead of the global one.
     * options.headers: headers added to every request (an Authorization header, say).
     * options.token: an access token for a server run with -auth token (or call login()).
     */
    constructor(endpoint = defaultEndpoint(), options = {}) {
      this.endpoint = String(endpoint).replace(/\/+$/, "");
      this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
      this.headers = options.headers || {};
      this.token = options.token || null;
    }

    /* The raw Response of METHOD path; rejects with DFFMLHTTPError for any status >= 400. */
    async send(method, path, { json, body, headers, signal } = {}) {
      const init = {
        method,
        mode: "cors",
        credentials: "omit",
        headers: { ...this.headers, ...headers },
      };
      if (signal) {
        init.signal = signal;
      }
      if (this.token && !("Authorization" in init.headers)) {
        init.headers.Authorization = `Bearer ${this.token}`;
      }
      if (json !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(json);
      } else if (body !== undefined) {
        init.body = body;
      }
      const response = await this.fetch(this.endpoint + path, init);
      if (response.status >= 400) {
        throw await DFFMLHTTPAPI.errorOf(response);
      }
      return response;
    }

    /*
     * The parsed JSON body of METHOD path:  api.request("GET", "/health").
     * Called as the original client's  api.request(path, fetchOptions)  it resolves to the raw
     * Response instead (rawRequest, below); either way a status >= 400 rejects.
     */
    async request(method, path, options) {
      if (typeof path !== "string") {
        return this.rawRequest(method, path);
      }
      const response = await this.send(method, path, options);
      return response.json();
    }

    static async errorOf(response) {
      const text = await response.text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch (_) {
        // Not our JSON envelope (a proxy's HTML page, say): report the status line instead.
      }
      const message =
        body && typeof body.error === "string"
          ? body.error
          : `HTTP ${response.status} ${response.statusText}`.trim();
      return new DFFMLHTTPError(message, response.status, body);
    }

    health() {
      return this.request("GET", "/health");
    }

    // ---- users and tokens (-auth token) -----------------------------------------------------

    /* Log in; later requests carry the token. Resolves to {access_token, token_type, expires_in}. */
    async login(username, password) {
      const body = await this.request("POST", "/auth/login", { json: { username, password } });
      this.token = body.access_token;
      return body;
    }

    /* Revoke the current token on the server and forget it here. */
    async logout() {
      const body = await this.request("POST", "/auth/logout");
      this.token = null;
      return body;
    }

    /* {username, admin, rules, expires_at} of the current token. */
    me() {
      return this.request("GET", "/auth/me");
    }

    /* Create a user: open registration, or an admin's token when it is closed. An admin may
       give the user endpoint rules of their own: register(name, password, {rules: [...]}). */
    register(username, password, { rules } = {}) {
      const json = rules === undefined ? { username, password } : { username, password, rules };
      return this.request("POST", "/auth/registration", { json });
    }

    /* Change the password; the old tokens stop working and this client keeps the new one. */
    async changePassword(password, newPassword) {
      const body = await this.request("POST", "/auth/password", {
        json: { password, new_password: newPassword },
      });
      this.token = body.access_token;
      return body;
    }

    // ---- upload dir -------------------------------------------------------------------------

    /* Upload data (Blob, File, string, ArrayBuffer or typed array) to path in the upload dir. */
    upload(path, data, { overwrite = true } = {}) {
      const form = new FormData();
      const name = String(path).split("/").pop();
      form.append("file", asBlob(data), name);
      const query = overwrite ? "" : "?overwrite=false";
      return this.request("POST", `/service/upload/${filePath(path)}${query}`, { body: form });
    }

    /* [{filename, size}, …] for every file in the upload dir; with {details: true} each also
     * has modified (ISO 8601, UTC). */
    files({ details = false } = {}) {
      return this.request("GET", `/service/files${details ? "?details=1" : ""}`);
    }

    /* The file's content as a Blob (use .text() or .arrayBuffer() on it). */
    async download(path) {
      const response = await this.send("GET", `/service/files/${filePath(path)}`);
      return response.blob();
    }

    deleteFile(path) {
      return this.request("DELETE", `/service/files/${filePath(path)}`);
    }

    // ---- upload progress (the dashboard, issue 16) ------------------------------------------

    /*
     * upload() that reports progress: onProgress(sentBytes, totalBytes) as the body goes out.
     * In a browser it is sent with XMLHttpRequest, the one API that reports upload progress;
     * elsewhere (Node) it is upload() with one report once done. signal: an AbortSignal that
     * cancels it (rejects with an AbortError).
     */
    uploadWithProgress(path, data, { overwrite = true, onProgress = () => {}, signal } = {}) {
      const blob = asBlob(data);
      const XHR = globalThis.XMLHttpRequest;
      if (typeof XHR !== "function") {
        return this.upload(path, blob, { overwrite }).then((body) => {
          onProgress(blob.size, blob.size);
          return body;
        });
      }
      const form = new FormData();
      form.append("file", blob, String(path).split("/").pop());
      const query = overwrite ? "" : "?overwrite=false";
      return new Promise((resolve, reject) => {
        const xhr = new XHR();
        xhr.open("POST", `${this.endpoint}/service/upload/${filePath(path)}${query}`);
        const headers = { ...this.headers };
        // The access token of a server run with -auth token, as send() adds it.
        if (this.token && !("Authorization" in headers)) {
          headers.Authorization = `Bearer ${this.token}`;
        }
        for (const [name, value] of Object.entries(headers)) {
          xhr.setRequestHeader(name, value);
        }
        xhr.upload.onprogress = (event) => {
          onProgress(event.loaded, event.lengthComputable ? event.total : blob.size);
        };
        xhr.onload = () => {
          let body = null;
          try {
            body = JSON.parse(xhr.responseText);
          } catch (_) {
            // Not our JSON envelope: the status line says what happened.
          }
          if (xhr.status >= 400) {
            const message =
              body && typeof body.error === "string"
                ? body.error
                : `HTTP ${xhr.status} ${xhr.statusText}`.trim();
            reject(new DFFMLHTTPError(message, xhr.status, body));
            return;
          }
          onProgress(blob.size, blob.size);
          resolve(body);
        };
        xhr.onerror = () => {
          reject(new DFFMLHTTPError("The upload did not reach the server", 0, null));
        };
        xhr.onabort = () => {
          reject(new DOMException("The upload was cancelled", "AbortError"));
        };
        if (signal) {
          if (signal.aborted) {
            reject(new DOMException("The upload was cancelled", "AbortError"));
            return;
          }
          signal.addEventListener("abort", () => xhr.abort(), { once: true });
        }
        xhr.send(form);
      });
    }

    // ---- plugins, labels, contexts ----------------------------------------------------------

    /* kinds: "sources", "models", "scorers" or "modules". */
    list(kinds) {
      return this.request("GET", `/list/${segment(kinds)}`);
    }

    /* Configure plugin under label; config is flat ({filename: "a.csv"}) or DFFML's nested form. */
    configure(kind, plugin, label, config = {}) {
      const path = `/configure/${segment(kind)}/${segment(plugin)}/${segment(label)}`;
      return this.request("POST", path, { json: config });
    }

    release(kind, label) {
      return this.request("DELETE", `/configure/${segment(kind)}/${segment(label)}`);
    }

    context(kind, label, ctxLabel = label) {
      const path = `/context/${segment(kind)}/${segment(label)}/${segment(ctxLabel)}`;
      return this.request("GET", path);
    }

    releaseContext(kind, ctxLabel) {
      return this.request("DELETE", `/context/${segment(kind)}/${segment(ctxLabel)}`);
    }

    // ---- sources ----------------------------------------------------------------------------

    /* One record; a key the source lacks comes back as just {key}. */
    record(sourceCtx, key) {
      return this.request("GET", `/source/${segment(sourceCtx)}/record/${segment(key)}`);
    }

    update(sourceCtx, key, record) {
      const path = `/source/${segment(sourceCtx)}/update/${segment(key)}`;
      return this.request("POST", path, { json: record });
    }

    /*
     * Async iterator over the pages {iterkey, records} of a source, chunkSize records a page,
     * following iterkeys. Leaving the loop early releases the server's cursor.
     */
    async *recordPages(sourceCtx, chunkSize = 100) {
      const base = `/source/${segment(sourceCtx)}/records`;
      let page = await this.request("GET", `${base}/${segment(chunkSize)}`);
      try {
        yield page;
        while (page.iterkey !== null) {
          page = await this.request("GET", `${base}/${segment(page.iterkey)}/${segment(chunkSize)}`);
          yield page;
        }
      } finally {
        if (page.iterkey !== null) {
          await this.releaseRecords(sourceCtx, page.iterkey).catch(() => {
            // The cursor expires on its own; failing to release it early changes nothing.
          });
        }
      }
    }

    /* Async iterator over every record of a source:  for await (const r of api.records("s")) */
    async *records(sourceCtx, chunkSize = 100) {
      for await (const page of this.recordPages(sourceCtx, chunkSize)) {
        yield* Object.values(page.records);
      }
    }

    /*
     * Async iterator over every record of a source in one streamed response (NDJSON), without
     * iterkeys: records arrive as the server reads them. Leaving the loop early closes it.
     */
    async *recordStream(sourceCtx) {
      const response = await this.send("GET", `/source/${segment(sourceCtx)}/records`, {
        headers: { Accept: "application/x-ndjson" },
      });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      try {
        for (;;) {
          const { done, value } = await reader.read();
          buffered += decoder.decode(value, { stream: !done });
          const lines = buffered.split("\n");
          buffered = lines.pop();
          for (const line of lines) {
            if (line.trim()) {
              yield JSON.parse(line);
            }
          }
          if (done) {
            break;
          }
        }
        if (buffered.trim()) {
          yield JSON.parse(buffered);
        }
      } finally {
        await reader.cancel().catch(() => {
          // Already finished or failed: nothing left to close.
        });
      }
    }

    releaseRecords(sourceCtx, iterkey) {
      const path = `/source/${segment(sourceCtx)}/records/${segment(iterkey)}`;
      return this.request("DELETE", path);
    }

    // ---- models and scorers -----------------------------------------------------------------

    /* Train modelCtx on the records of the given source contexts. */
    train(modelCtx, sourceCtxs) {
      return this.request("POST", `/model/${segment(modelCtx)}/train`, { json: sourceCtxs });
    }

    /* The scorer's figure for modelCtx on the given source contexts (a number). */
    async score(scorerCtx, modelCtx, sourceCtxs) {
      const path = `/scorer/${segment(scorerCtx)}/${segment(modelCtx)}/score`;
      const body = await this.request("POST", path, { json: sourceCtxs });
      return body.accuracy;
    }

    /* The older route: the model's own scorer. */
    async accuracy(modelCtx, sourceCtxs) {
      const path = `/model/${segment(modelCtx)}/accuracy`;
      const body = await this.request("POST", path, { json: sourceCtxs });
      return body.accuracy;
    }

    /*
     * The versions kept of a model with a location (-keep-versions): {versions: [{version,
     * trained, sources, score}], aliases: {latest: N, …}}. A model context may be addressed as
     * "ctx@N" or "ctx@alias" wherever a model context is named.
     */
    versions(modelCtx) {
      return this.request("GET", `/model/${segment(modelCtx)}/versions`);
    }

    /* Point alias (champion, …) of modelCtx at version; answers as versions(). */
    setAlias(modelCtx, alias, version) {
      const path = `/model/${segment(modelCtx)}/aliases/${segment(alias)}`;
      return this.request("POST", path, { json: { version } });
    }

    /* Predict records ({key: {features: {…}}}) in one response: {key: record with prediction}. */
    async predict(modelCtx, records) {
      const page = await this.request("POST", `/model/${segment(modelCtx)}/predict/0`, {
        json: records,
      });
      return page.records;
    }

    /* Async iterator over predicted records, chunkSize a response, following iterkeys. */
    async *predictions(modelCtx, records, chunkSize = 100) {
      const first = `/model/${segment(modelCtx)}/predict/${segment(chunkSize)}`;
      yield* this.predictedPages(modelCtx, chunkSize, () =>
        this.request("POST", first, { json: records }),
      );
    }

    /* Async iterator over the predictions for every record of a source context. */
    async *predictSource(modelCtx, sourceCtx, chunkSize = 100) {
      const first =
        `/model/${segment(modelCtx)}/predict/${segment(chunkSize)}` +
        `?source=${encodeURIComponent(sourceCtx)}`;
      yield* this.predictedPages(modelCtx, chunkSize, () => this.request("POST", first));
    }

    async *predictedPages(modelCtx, chunkSize, firstPage) {
      let page = await firstPage();
      try {
        yield* Object.values(page.records);
        while (page.iterkey !== null) {
          const path =
            `/model/${segment(modelCtx)}/predict/${segment(page.iterkey)}/${segment(chunkSize)}`;
          page = await this.request("GET", path);
          yield* Object.values(page.records);
        }
      } finally {
        if (page.iterkey !== null) {
          await this.releasePredictions(modelCtx, page.iterkey).catch(() => {
            // As for records: the cursor expires on its own.
          });
        }
      }
    }

    releasePredictions(modelCtx, iterkey) {
      const path = `/model/${segment(modelCtx)}/predict/${segment(iterkey)}`;
      return this.request("DELETE", path);
    }

    // ---- modules ----------------------------------------------------------------------------

    /* Run a module function: body is {files: [...], options: {...}}. */
    module(moduleCtx, functionName, body = {}) {
      const path = `/module/${segment(moduleCtx)}/${segment(functionName)}`;
      return this.request("POST", path, { json: body });
    }

    // ---- tasks (docs/tasks.md) ------------------------------------------------------------
    //
    // The *Async methods start the work as a task and resolve at once with
    // {task_id, status: "PENDING", location}; waitTask follows it to its end.

    /* POST path?async=1 with a JSON body: the 202's {task_id, status, location}. */
    submit(path, json) {
      const separator = path.includes("?") ? "&" : "?";
      return this.request("POST", `${path}${separator}async=1`, { json });
    }

    trainAsync(modelCtx, sourceCtxs) {
      return this.submit(`/model/${segment(modelCtx)}/train`, sourceCtxs);
    }

    accuracyAsync(modelCtx, sourceCtxs) {
      return this.submit(`/model/${segment(modelCtx)}/accuracy`, sourceCtxs);
    }

    scoreAsync(scorerCtx, modelCtx, sourceCtxs) {
      return this.submit(`/scorer/${segment(scorerCtx)}/${segment(modelCtx)}/score`, sourceCtxs);
    }

    /* Predict records as a task: its result is {iterkey: null, records: {...}}. */
    predictAsync(modelCtx, records) {
      return this.submit(`/model/${segment(modelCtx)}/predict/0`, records);
    }

    /* Predict every record of a source as a task: its result is {file, records} (NDJSON). */
    predictSourceAsync(modelCtx, sourceCtx) {
      const path =
        `/model/${segment(modelCtx)}/predict/0?source=${encodeURIComponent(sourceCtx)}`;
      return this.submit(path, undefined);
    }

    moduleAsync(moduleCtx, functionName, body = {}) {
      return this.submit(`/module/${segment(moduleCtx)}/${segment(functionName)}`, body);
    }

    /* The task as the server has it now: {task_id, kind, target, status, progress, ...}. */
    task(taskId) {
      return this.request("GET", `/task/${segment(taskId)}`);
    }

    /* {tasks: [...], total}; filters: {status, kind, limit, offset}. */
    tasks(filters = {}) {
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(filters)) {
        if (value !== undefined && value !== null) {
          query.set(name, String(value));
        }
      }
      const text = query.toString();
      return this.request("GET", text ? `/tasks?${text}` : "/tasks");
    }

    /* Cancel a task: resolves with it (CANCELLED); a finished one rejects with status 409. */
    cancelTask(taskId) {
      return this.request("DELETE", `/task/${segment(taskId)}`);
    }

    /*
     * Resolve with the task once it has finished (SUCCESS, FAILURE or CANCELLED: check
     * .status). Follows its Server-Sent Events, or polls every `interval` ms with
     * {events: false} or where the stream cannot be read.
     * onProgress({done, total, message}), onLog(line), onStatus(task) report along the way;
     * an AbortSignal stops waiting (the task runs on).
     */
    async waitTask(taskId, options = {}) {
      const { events = true } = options;
      if (events) {
        const task = await this.followEvents(taskId, options).catch((error) => {
          if (error instanceof DFFMLHTTPError || (options.signal && options.signal.aborted)) {
            throw error;
          }
          return null; // the stream broke (a proxy, a network blip): poll instead
        });
        if (task !== null) {
          return task;
        }
      }
      return this.pollTask(taskId, options);
    }

    async followEvents(taskId, { onProgress, onLog, onStatus, signal } = {}) {
      const response = await this.send("GET", `/task/${segment(taskId)}/events`, {
        headers: { Accept: "text/event-stream" },
        signal,
      });
      if (!response.body || !response.body.getReader) {
        return null;
      }
      let last = null;
      for await (const event of sseEvents(response)) {
        if (event.name === "status") {
          last = event.data;
          if (onStatus) onStatus(event.data);
        } else if (event.name === "progress" && onProgress) {
          onProgress(event.data);
        } else if (event.name === "log" && onLog) {
          onLog(event.data.line);
        }
      }
      if (last === null || !FINAL.has(last.status)) {
        throw new Error("the event stream ended before the task did");
      }
      return last;
    }

    async pollTask(taskId, { onProgress, onStatus, interval = 500, signal } = {}) {
      let status = null;
      for (;;) {
        const task = await this.task(taskId);
        if (task.status !== status) {
          status = task.status;
          if (onStatus) onStatus(task);
        }
        if (onProgress) onProgress(task.progress);
        if (FINAL.has(task.status)) {
          return task;
        }
        await sleep(interval, signal);
      }
    }

    // ---- pipelines, runs and jobs (docs/pipelines.md) ----------------------------------------

    /* tasks: [{module: ctxLabel, function: name, options: {...}}, …], checked on creation. */
    createPipeline(name, tasks) {
      return this.request("POST", "/pipelines", { json: { name, tasks } });
    }

    /* {pipelines: [...], total}; limit (≤ 1000) and offset page through them. */
    pipelines({ limit = 100, offset = 0 } = {}) {
      return this.request("GET", `/pipelines?limit=${limit}&offset=${offset}`);
    }

    pipeline(id) {
      return this.request("GET", `/pipelines/${segment(id)}`);
    }

    deletePipeline(id) {
      return this.request("DELETE", `/pipelines/${segment(id)}`);
    }

    /* Start a run of pipeline over files of the upload dir: the run, its jobs PENDING. */
    startRun(pipeline, files) {
      return this.request("POST", "/runs", { json: { pipeline, files } });
    }

    /* {runs: [...], total}; filter by pipeline id or status. */
    runs({ limit = 100, offset = 0, pipeline, status } = {}) {
      const query = new URLSearchParams({ limit: String(limit), offset: String(offset) });
      if (pipeline !== undefined) query.set("pipeline", pipeline);
      if (status !== undefined) query.set("status", status);
      return this.request("GET", `/runs?${query}`);
    }

    run(id) {
      return this.request("GET", `/runs/${segment(id)}`);
    }

    job(id) {
      return this.request("GET", `/jobs/${segment(id)}`);
    }

    /* Stop a run: its running job is stopped; answers with the run, CANCELLED. */
    cancelRun(id) {
      return this.request("DELETE", `/runs/${segment(id)}`);
    }

    /* Resume a FAILED or CANCELLED run from its first unfinished job. */
    retryRun(id) {
      return this.request("POST", `/runs/${segment(id)}/retry`);
    }

    /* Async iterator of {event, data} ("status": the run, "job": a job that changed, "log":
     * {job, task, line}) until the run's final status. */
    async *runEvents(id) {
      const response = await this.send("GET", `/runs/${segment(id)}/events`, {
        headers: { Accept: "text/event-stream" },
      });
      for await (const { name, data } of sseEvents(response)) {
        yield { event: name, data };
      }
    }

    /* Follow a run to its end, calling onEvent(event, data) for each event; resolves to the
     * run as it ended (FINISHED, FAILED or CANCELLED). */
    async followRun(id, onEvent = () => {}) {
      let run = null;
      for await (const { event, data } of this.runEvents(id)) {
        onEvent(event, data);
        if (event === "status") run = data;
      }
      return run;
    }

    // ---- the dashboard's additions (issue 16): additive, nothing above changes ----------------

    /*
     * Every configured label by kind, as GET /labels answers:
     * {source: {label: {plugin, config, contexts: [ctxLabel, …], preloaded}}, model: {…}, …}.
     */
    labels() {
      return this.request("GET", "/labels");
    }

    /* The open context labels of kind ("source", "model", "scorer", "module"), sorted, each
     * with the label and plugin it belongs to: [{ctx, label, plugin, config}, …]. */
    async contexts(kind) {
      const section = (await this.labels())[kind] || {};
      const out = [];
      for (const [label, info] of Object.entries(section)) {
        for (const ctx of info.contexts || []) {
          out.push({ ctx, label, plugin: info.plugin, config: info.config });
        }
      }
      return out.sort((a, b) => (a.ctx < b.ctx ? -1 : a.ctx > b.ctx ? 1 : 0));
    }

    /*
     * Follow a run's events (GET /runs/{id}/events) as followRun does, but stoppable: an
     * AbortSignal closes the stream (the promise then rejects with an AbortError; the run goes
     * on). onEvent(event, data) hears "status" (the run), "job" (a job that changed) and "log"
     * ({job, task, line}); resolves to the run as it ended.
     */
    async followRunEvents(id, { onEvent = () => {}, signal } = {}) {
      const response = await this.send("GET", `/runs/${segment(id)}/events`, {
        headers: { Accept: "text/event-stream" },
        signal,
      });
      let run = null;
      for await (const event of sseEvents(response, signal)) {
        if (event.name === "status") run = event.data;
        onEvent(event.name, event.data);
      }
      return run;
    }
    // ---- end of the dashboard's additions -----------------------------------------------------
  }

  const FINAL = new Set(["SUCCESS", "FAILURE", "CANCELLED"]);

  /*
   * Each {name, data} event of a Server-Sent Events response until it ends. Leaving the loop
   * early closes the stream; with a signal, its abort is thrown (its reason) between events.
   */
  async function* sseEvents(response, signal) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffered.slice(0, end));
          buffered = buffered.slice(end + 2);
          if (event !== null) yield event;
          if (signal && signal.aborted) throw signal.reason;
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /* One Server-Sent Events block: {name, data} or null for a comment (keep-alive). */
  function parseEvent(block) {
    let name = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") {
        name = value;
      } else if (field === "data") {
        data.push(value);
      }
    }
    return name === null ? null : { name, data: JSON.parse(data.join("\n")) };
  }

  function sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal && signal.aborted) {
        reject(signal.reason);
        return;
      }
      const timer = setTimeout(resolve, ms);
      if (signal) {
        signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            reject(signal.reason);
          },
          { once: true },
        );
      }
    });
  }

  // ---- the original DFFML client's object API ---------------------------------------------
  //
  // Pages written for the original /api.js call  api.source() / api.model() / api.scorer(),
  // configure(plugin, label, config), context(ctxLabel), and then methods on the context
  // object; errors are thrown as Error (a DFFMLHTTPError) with the server's message. These
  // objects speak the same routes through api.request(path, options), which resolves to the
  // raw Response as the original's did. docs/clients.md describes both styles.

  // The fetch options the original client sends with every request.
  function originalInit(method, json) {
    const init = {
      method,
      mode: "cors",
      cache: "no-cache",
      credentials: "omit",
      redirect: "follow",
      // The original wrote referrer: "no-referrer", which fetch reads as a URL (Node refuses
      // it); the policy says what it meant.
      referrerPolicy: "no-referrer",
      headers: {},
    };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    return init;
  }

  // Source contexts may be given as context objects (the original's way) or as labels.
  const labelsOf = (contexts) =>
    Array.from(contexts, (context) => (typeof context === "string" ? context : context.label));

  class DFFMLHTTPAPIObjectContext {
    constructor(api, parent, label) {
      this.api = api;
      this.parent = parent;
      this.label = label;
    }

    async call(method, path, json) {
      const response = await this.api.request(path, originalInit(method, json));
      return response.json();
    }
  }

  class DFFMLHTTPAPISourceContext extends DFFMLHTTPAPIObjectContext {
    /* The first chunkSize records, {key: record}, as the original returned them. */
    async records(chunkSize) {
      const base = `/source/${segment(this.label)}/records`;
      const page = await this.call("GET", `${base}/${segment(chunkSize)}`);
      if (page.iterkey !== null) {
        // The original left the rest of the iteration open; release it instead of leaking it.
        await this.api.request(`${base}/${segment(page.iterkey)}`, originalInit("DELETE")).catch(
          () => {
            // The cursor expires on its own.
          },
        );
      }
      return page.records;
    }

    record(key) {
      return this.call("GET", `/source/${segment(this.label)}/record/${segment(key)}`);
    }

    update(record) {
      const path = `/source/${segment(this.label)}/update/${segment(record.key)}`;
      return this.call("POST", path, record);
    }
  }

  class DFFMLHTTPAPIModelContext extends DFFMLHTTPAPIObjectContext {
    train(sourceContexts) {
      return this.call("POST", `/model/${segment(this.label)}/train`, labelsOf(sourceContexts));
    }

    /* The model's own figure on the given source contexts (a number). */
    async accuracy(sourceContexts) {
      const path = `/model/${segment(this.label)}/accuracy`;
      return (await this.call("POST", path, labelsOf(sourceContexts))).accuracy;
    }

    /* {key: record with prediction} for records given as {key: {features: {…}}}. */
    async predict(records) {
      const path = `/model/${segment(this.label)}/predict/0`;
      return (await this.call("POST", path, records)).records;
    }
  }

  class DFFMLHTTPAPIScorerContext extends DFFMLHTTPAPIObjectContext {
    /* The scorer's figure for a model context on the given source contexts (a number). */
    async score(modelContext, sourceContexts) {
      const model = typeof modelContext === "string" ? modelContext : modelContext.label;
      const path = `/scorer/${segment(this.label)}/${segment(model)}/score`;
      return (await this.call("POST", path, labelsOf(sourceContexts))).accuracy;
    }
  }

  class DFFMLHTTPAPIObject {
    constructor(pluginType, contextClass, api) {
      this.plugin_type = pluginType;
      this.context_cls = contextClass;
      this.api = api;
      this.plugin = null;
      this.label = null;
      this.config = {};
    }

    /* Configure plugin under label; resolves to the server's body ({error: null}). */
    async configure(plugin, label, config = {}) {
      const path =
        `/configure/${segment(this.plugin_type)}/${segment(plugin)}/${segment(label)}`;
      const response = await this.api.request(path, originalInit("POST", config));
      const body = await response.json();
      this.plugin = plugin;
      this.label = label;
      this.config = config;
      return body;
    }

    /* Open a context of the configured label; resolves to its context object. */
    async context(ctxLabel) {
      const path =
        `/context/${segment(this.plugin_type)}/${segment(this.label)}/${segment(ctxLabel)}`;
      await (await this.api.request(path, originalInit("GET"))).json();
      return new this.context_cls(this.api, this, ctxLabel);
    }
  }

  const KINDS = {
    source: DFFMLHTTPAPISourceContext,
    model: DFFMLHTTPAPIModelContext,
    scorer: DFFMLHTTPAPIScorerContext,
  };
  for (const [kind, contextClass] of Object.entries(KINDS)) {
    Object.defineProperty(DFFMLHTTPAPI.prototype, kind, {
      value() {
        return new DFFMLHTTPAPIObject(kind, contextClass, this);
      },
      writable: true,
      configurable: true,
    });
  }

  /* fetch(endpoint + path, init) as the original's request did: the raw Response (status < 400),
   * else a DFFMLHTTPError with the server's message. options.headers given to the constructor
   * are added to init's headers. */
  Object.defineProperty(DFFMLHTTPAPI.prototype, "rawRequest", {
    async value(path, init = {}) {
      const headers = { ...this.headers };
      new Headers(init.headers || {}).forEach((value, name) => {
        headers[name] = value;
      });
      const response = await this.fetch(this.endpoint + path, { ...init, headers });
      if (response.status >= 400) {
        throw await DFFMLHTTPAPI.errorOf(response);
      }
      return response;
    },
    writable: true,
    configurable: true,
  });

  return { DFFMLHTTPAPI, DFFMLHTTPError };
});
