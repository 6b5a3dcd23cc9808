// imgdrop's browser uploader: no framework, no build step.
// Flow per file: sha256 (so a repeat is answered before any byte is sent) -> POST /v1/uploads
// (batches of <= 100) -> the bytes straight to storage -> poll GET /v1/images/{id} until it
// settles -> card. Up to the multipart threshold (100 MiB) the bytes go as one presigned POST
// (the policy fields + the file); above it as an S3 multipart upload whose every request is
// presigned by POST {sign_url}: create, parts (PARALLEL_PARTS at a time, each retried), complete.
// A multipart upload is remembered in localStorage ("imgdrop.uploads", by name + size + sha256):
// dropping the same file again, even after a reload, lists the parts S3 holds (a signed GET) and
// sends only the others.
(function () {
  "use strict";

  const TOKEN_KEY = "imgdrop.token";
  const API_KEY = "imgdrop.api";
  const RESUME_KEY = "imgdrop.uploads";
  const BATCH = 100;
  const CONCURRENCY = 4;
  const SETTLING = new Set(["pending", "processing"]);
  const POLL_TIMEOUT_MS = 5 * 60 * 1000;
  const MiB = 1024 * 1024;
  const WEBCRYPTO_LIMIT = 256 * MiB; // above: the incremental hasher (sha256.js), in 4 MiB slices
  const MIN_PART = 5 * MiB; // S3's minimum for every part but the last
  const MAX_LISTED_PARTS = 1000; // one ListParts page: a presigned GET cannot turn the page
  const PART_RETRIES = 3;

  // Query parameters (tests, and whoever wants them): ?multipart_threshold=BYTES lowers the size
  // above which a file goes multipart (the API's is 100 MiB; a smaller file asks "multipart": true),
  // ?parallel=N parts at a time, and ?stop_after_parts=N stops an upload after N parts as a closed
  // tab would, to try resuming.
  const PARAMS = new URLSearchParams(window.location.search);
  const intParam = (name, fallback) => {
    const v = Number.parseInt(PARAMS.get(name) || "", 10);
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  const MULTIPART_THRESHOLD = intParam("multipart_threshold", 100 * MiB);
  const PARALLEL_PARTS = intParam("parallel", 4);
  const STOP_AFTER_PARTS = intParam("stop_after_parts", 0);

  // Stable error codes in plain words; anything else falls back to the API's own title.
  const ERROR_WORDS = {
    file_error: "The file is damaged or is not an image.",
    unsupported_format: "This image format is not supported.",
    unsupported_content_type: "This kind of file is not accepted.",
    image_too_large: "The image is too large (too many pixels, frames or bytes).",
    file_too_large: "The file is larger than the upload limit.",
    file_too_small: "The file is empty.",
    size_mismatch: "The file that arrived is not the size that was announced.",
    image_already_exists: "This image was uploaded before.",
    tag_error: "A tag id was not recognized; the image was kept without it.",
    token_missing: "No token: paste one in Connection.",
    token_invalid: "The token was not accepted: check it, or paste a new one.",
    token_expired: "The token has expired: paste a new one.",
    insufficient_scope: "The token does not allow this (missing scope).",
    album_forbidden: "The token may not use this album.",
    not_found: "Not found (or not yours).",
    validation_error: "Some fields were not valid.",
    upload_failed: "The upload to storage did not go through.",
    upload_closed: "This upload is closed (the image arrived, settled or expired).",
    interrupted: "Interrupted: drop the same file again to resume.",
    upload_expired: "The upload never arrived and expired.",
    expired: "The upload never arrived and expired.",
    processing_error: "Processing the image failed.",
    processing_failed: "Processing the image failed.",
    internal_error: "The service had an internal error.",
    network_error: "The network request failed (is the API reachable? CORS?).",
    wait_timeout: "Still processing after 5 minutes; it may finish later.",
  };

  const $ = (sel, root) => (root || document).querySelector(sel);
  const els = {
    token: $("#token"),
    api: $("#api-base"),
    album: $("#album"),
    tags: $("#tags"),
    profile: $("#profile"),
    input: $("#file-input"),
    drop: $("#drop"),
    uploads: $("#uploads"),
    gallery: $("#gallery"),
    galleryTitle: $("#gallery-title"),
    banner: $("#banner"),
    tokenState: $("#token-state"),
    health: $("#health"),
    forget: $("#forget-token"),
    settings: $("#settings"),
  };

  // ------------------------------------------------------------------ settings

  function apiBase() {
    const v = (els.api.value || "").trim().replace(/\/+$/, "");
    return v || window.location.origin;
  }

  function token() {
    return (els.token.value || "").trim().replace(/^Bearer\s+/i, "");
  }

  function describeToken() {
    const t = token();
    if (!t) {
      els.tokenState.textContent = "no token";
      els.tokenState.className = "pill warn";
      return;
    }
    try {
      const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
      const left = claims.exp ? Math.round(claims.exp - Date.now() / 1000) : null;
      const who = (claims.tenant || "no tenant") + " · " + (claims.scope || "no scope");
      if (left !== null && left <= 0) {
        els.tokenState.textContent = who + " · expired";
        els.tokenState.className = "pill bad";
      } else {
        els.tokenState.textContent = who + (left !== null ? " · " + humanDuration(left) + " left" : "");
        els.tokenState.className = "pill ok";
      }
    } catch (e) {
      els.tokenState.textContent = "not a JWT";
      els.tokenState.className = "pill bad";
    }
  }

  function humanDuration(seconds) {
    if (seconds < 90) return seconds + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return Math.round(seconds / 3600) + " h";
  }

  function loadSettings() {
    try {
      els.token.value = localStorage.getItem(TOKEN_KEY) || "";
      els.api.value = localStorage.getItem(API_KEY) || "";
    } catch (e) { /* storage disabled: the fields still work for this visit */ }
    const params = new URLSearchParams(window.location.search);
    if (params.get("api")) els.api.value = params.get("api");
    describeToken();
    if (token()) els.settings.open = false;
  }

  function save(key, value) {
    try {
      if (value) localStorage.setItem(key, value);
      else localStorage.removeItem(key);
    } catch (e) { /* ignore */ }
  }

  els.token.addEventListener("input", () => { save(TOKEN_KEY, token()); describeToken(); hideBanner(); });
  els.api.addEventListener("change", () => { save(API_KEY, els.api.value.trim()); checkHealth(); });
  els.forget.addEventListener("click", () => { els.token.value = ""; save(TOKEN_KEY, ""); describeToken(); });

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, errors) {
      const first = (errors && errors[0]) || { code: "http_" + status, title: "HTTP " + status };
      super(first.title || first.code);
      this.status = status;
      this.errors = errors && errors.length ? errors : [first];
      this.code = first.code;
    }
  }

  // `path` is under /v1, or an absolute URL the API handed out (a sign_url).
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const url = /^https?:\/\//.test(path) ? path : apiBase() + "/v1" + path;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, [{ code: "network_error", title: String(e.message || e) }]);
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!response.ok) {
      const errors = data && Array.isArray(data.errors) ? data.errors
        : [{ code: "http_" + response.status, title: (data && data.message) || text.slice(0, 200) || response.statusText }];
      throw new ApiError(response.status, errors);
    }
    return data;
  }

  function words(error) {
    if (!error) return "";
    if (typeof error === "string") return ERROR_WORDS[error] || error;
    return ERROR_WORDS[error.code] || error.title || error.code || "Something went wrong.";
  }

  function showBanner(error) {
    const code = error.code || (error.errors && error.errors[0] && error.errors[0].code);
    els.banner.textContent = words(error.errors ? error.errors[0] : error) + (code ? " (" + code + ")" : "");
    els.banner.hidden = false;
    if (/^token_|insufficient_scope/.test(code || "")) els.settings.open = true;
  }

  function hideBanner() { els.banner.hidden = true; }

  async function checkHealth() {
    try {
      const r = await fetch(apiBase() + "/v1/health");
      els.health.textContent = r.ok ? "API reachable at " + apiBase() : "API answered " + r.status;
      els.health.className = r.ok ? "ok" : "bad";
    } catch (e) {
      els.health.textContent = "API not reachable at " + apiBase();
      els.health.className = "bad";
    }
  }

  // ------------------------------------------------------------------ upload rows

  function addRow(file) {
    const li = $("#upload-row").content.firstElementChild.cloneNode(true);
    $(".name", li).textContent = file.name + " · " + formatBytes(file.size);
    li.dataset.file = file.name;
    els.uploads.prepend(li);
    return {
      li,
      progress(fraction) {
        const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
        $("progress", li).value = pct;
        if (pct > Number(li.dataset.progress)) li.dataset.progress = String(pct);
      },
      status(status, html) {
        li.dataset.status = status;
        const s = $(".status", li);
        if (html instanceof Node) { s.textContent = ""; s.append(html); } else { s.textContent = html || status; }
      },
    };
  }

  function formatBytes(n) {
    if (n == null) return "";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  // WebCrypto digests a whole buffer at once: fine up to WEBCRYPTO_LIMIT. Above it (and outside
  // secure contexts, which have no crypto.subtle) sha256.js hashes 4 MiB slices, so a 2 GiB file
  // never sits in memory. The hash is both the API's early duplicate check and, with name and
  // size, what matches a dropped file to an interrupted upload: a file changed anywhere (not
  // only at its ends) must never resume onto the old file's parts.
  async function sha256Hex(file, onProgress) {
    if (window.crypto && crypto.subtle && file.size <= WEBCRYPTO_LIMIT) {
      const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
      return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    }
    if (!window.Sha256) return null;
    return window.Sha256.ofBlob(file, onProgress);
  }

  function wantsMultipart(file) {
    return file.size > MULTIPART_THRESHOLD;
  }

  function itemFor(file, sha256) {
    const item = {
      filename: file.name,
      content_type: file.type || "application/octet-stream",
      size: file.size,
    };
    if (sha256) item.sha256 = sha256;
    if (wantsMultipart(file)) item.multipart = true;
    const album = els.album.value.trim();
    if (album) item.album_id = album;
    const tags = els.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (tags.length) item.tags = tags;
    if (els.profile.value) item.profile = els.profile.value;
    return item;
  }

  // The presigned POST: every policy field first, the file last (S3 ignores fields after it).
  function postToStorage(upload, file, onProgress) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const [name, value] of Object.entries(upload.fields || {})) form.append(name, value);
      form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open(upload.method || "POST", upload.url);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(1);
          resolve();
        } else {
          const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText || "");
          const msg = /<Message>([^<]+)<\/Message>/.exec(xhr.responseText || "");
          reject(new ApiError(xhr.status, [{
            code: "upload_failed",
            title: "Storage answered " + xhr.status + (code ? " " + code[1] : "") + (msg ? ": " + msg[1] : ""),
          }]));
        }
      };
      xhr.onerror = () => reject(new ApiError(0, [{ code: "network_error", title: "The upload could not reach storage." }]));
      xhr.send(form);
    });
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ------------------------------------------------------------------ S3 multipart

  // The remembered multipart uploads: {"<name>|<size>|<sha256>": {image_id, upload_id, key,
  // sign_url, part_size, api, expires_at, created_at}}. Past its expires_at a record is dropped.
  function resumeKey(file, sha256) {
    return sha256 ? file.name + "|" + file.size + "|" + sha256 : null;
  }

  function loadRecords() {
    let records = {};
    try { records = JSON.parse(localStorage.getItem(RESUME_KEY) || "{}") || {}; } catch (e) { records = {}; }
    const now = Date.now();
    for (const [k, r] of Object.entries(records)) {
      if (!r || !r.upload_id || (r.expires_at && Date.parse(r.expires_at) < now)) delete records[k];
    }
    return records;
  }

  function saveRecords(records) {
    try {
      if (Object.keys(records).length) localStorage.setItem(RESUME_KEY, JSON.stringify(records));
      else localStorage.removeItem(RESUME_KEY);
    } catch (e) { /* storage disabled or full: this upload just cannot resume */ }
  }

  function recall(key) {
    const record = key ? loadRecords()[key] : null;
    return record && record.api === apiBase() ? record : null;
  }

  function remember(key, record) {
    if (!key) return;
    const records = loadRecords();
    records[key] = Object.assign({ created_at: new Date().toISOString() }, record);
    saveRecords(records);
  }

  function forget(key) {
    if (!key) return;
    const records = loadRecords();
    delete records[key];
    saveRecords(records);
  }

  function planParts(size, partSize) {
    let part = Math.max(MIN_PART, partSize || 8 * MiB);
    part = Math.max(part, Math.ceil(size / MAX_LISTED_PARTS));
    const parts = [];
    for (let offset = 0, n = 1; offset < size || n === 1; offset += part, n++) {
      parts.push({ number: n, start: offset, end: Math.min(size, offset + part) });
      if (size === 0) break;
    }
    return { partSize: part, parts };
  }

  const xmlText = (xml, tag) => {
    const m = new RegExp("<" + tag + ">([^<]*)</" + tag + ">").exec(xml || "");
    return m ? m[1].replace(/&quot;/g, '"').replace(/&#34;/g, '"').replace(/&amp;/g, "&") : null;
  };

  function parseListParts(xml) {
    const parts = {};
    for (const m of (xml || "").matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
      const n = Number(xmlText(m[1], "PartNumber"));
      const etag = xmlText(m[1], "ETag");
      if (n && etag) parts[n] = { etag, size: Number(xmlText(m[1], "Size") || -1) };
    }
    return parts;
  }

  class Interrupted extends Error {}

  function storageError(xhr, what) {
    const code = xmlText(xhr.responseText, "Code");
    const msg = xmlText(xhr.responseText, "Message");
    const err = new ApiError(xhr.status, [{
      code: "upload_failed",
      title: "Storage refused " + what + " (" + (code || xhr.status) + ")" + (msg ? ": " + msg : ""),
    }]);
    err.s3Code = code;
    return err;
  }

  // One presigned S3 request; resolves the XHR. `track` keeps it abortable.
  function s3Request(signed, method, body, onProgress, track) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, signed.url);
      for (const [name, value] of Object.entries(signed.headers || {})) {
        if (!/^(host|content-length)$/i.test(name)) xhr.setRequestHeader(name, value);
      }
      if (onProgress) xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded); };
      xhr.onload = () => {
        track && track.delete(xhr);
        const failed = xhr.status < 200 || xhr.status >= 300 || /^\s*(<\?xml[^>]*>\s*)?<Error>/.test(xhr.responseText || "");
        if (failed) reject(storageError(xhr, method === "PUT" ? "a part" : "the request"));
        else resolve(xhr);
      };
      xhr.onerror = () => {
        track && track.delete(xhr);
        reject(new ApiError(0, [{ code: "network_error", title: "The upload could not reach storage." }]));
      };
      xhr.onabort = () => { track && track.delete(xhr); reject(new Interrupted("aborted")); };
      track && track.add(xhr);
      xhr.send(body === undefined ? null : body);
    });
  }

  const retryable = (e) => e instanceof ApiError
    && (e.status === 0 || e.status >= 500 || e.status === 403 || e.status === 408 || e.status === 429
        || e.s3Code === "RequestTimeout");

  // Sends one file as an S3 multipart upload (target: {image_id, sign_url, key, part_size,
  // upload_id?}); with an upload_id it resumes: ListParts, then only the missing parts.
  async function sendMultipart(file, row, target, key) {
    const { partSize, parts } = planParts(file.size, target.part_size);
    const loaded = parts.map(() => 0);
    const etags = {};
    const inflight = new Set();
    const show = () => row.progress(loaded.reduce((a, b) => a + b, 0) / (file.size || 1));
    const sign = (body) => api("POST", target.sign_url, body);
    const record = () => ({
      image_id: target.image_id, upload_id: target.upload_id, key: target.key, sign_url: target.sign_url,
      part_size: partSize, api: apiBase(), expires_at: target.expires_at || null,
    });

    if (target.upload_id) {
      row.status("uploading", "resuming: listing the stored parts…");
      const xhr = await s3Request(await sign({ method: "GET", upload_id: target.upload_id }), "GET");
      const listed = parseListParts(xhr.responseText);
      for (const p of parts) {
        const have = listed[p.number];
        if (have && (have.size < 0 || have.size === p.end - p.start)) {
          etags[p.number] = have.etag;
          loaded[p.number - 1] = p.end - p.start;
        }
      }
      row.li.dataset.resumedParts = String(Object.keys(etags).length);
      show();
    } else {
      row.status("uploading", "starting a multipart upload…");
      const xhr = await s3Request(await sign({ method: "POST" }), "POST");
      target.upload_id = xmlText(xhr.responseText, "UploadId");
      if (!target.upload_id) throw new ApiError(0, [{ code: "upload_failed", title: "Storage answered no UploadId." }]);
      remember(key, record());
    }
    row.li.dataset.uploadId = target.upload_id;
    row.li.dataset.parts = String(parts.length);

    const missing = parts.filter((p) => !etags[p.number]);
    let next = 0;
    let sentNow = 0;
    let failure = null;
    let stopped = false;
    const label = () => "uploading · " + Object.keys(etags).length + " of " + parts.length + " parts";
    row.status("uploading", label());

    async function sendPart(p) {
      for (let attempt = 0; ; attempt++) {
        try {
          const signed = await sign({ method: "PUT", upload_id: target.upload_id, part_number: p.number });
          const xhr = await s3Request(signed, "PUT", file.slice(p.start, p.end), (n) => {
            loaded[p.number - 1] = n;
            show();
          }, inflight);
          const etag = xhr.getResponseHeader("ETag");
          if (!etag) {
            throw new ApiError(0, [{ code: "upload_failed", title: "Storage answered a part with no ETag (CORS must expose it)." }]);
          }
          etags[p.number] = etag;
          loaded[p.number - 1] = p.end - p.start;
          show();
          return;
        } catch (e) {
          loaded[p.number - 1] = 0;
          show();
          if (e instanceof Interrupted || stopped || failure || attempt >= PART_RETRIES || !retryable(e)) throw e;
          await sleep(1000 * 2 ** attempt);
        }
      }
    }

    async function worker() {
      while (next < missing.length && !failure && !stopped) {
        const p = missing[next++];
        try {
          await sendPart(p);
        } catch (e) {
          if (!(e instanceof Interrupted) && !stopped) {
            failure = failure || e;
            inflight.forEach((x) => x.abort());
          }
          return;
        }
        sentNow++;
        row.li.dataset.sentParts = String(sentNow);
        row.status("uploading", label());
        if (STOP_AFTER_PARTS && sentNow >= STOP_AFTER_PARTS && Object.keys(etags).length < parts.length) {
          stopped = true; // the test hook: as if the tab closed now
          inflight.forEach((x) => x.abort());
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, missing.length) }, worker));
    if (failure) throw failure;
    if (stopped) throw new Interrupted("stopped after " + sentNow + " parts");

    row.status("uploading", "completing…");
    const body = "<CompleteMultipartUpload>" + parts.map((p) => "<Part><PartNumber>" + p.number
      + "</PartNumber><ETag>" + etags[p.number].replace(/&/g, "&amp;").replace(/</g, "&lt;")
      + "</ETag></Part>").join("") + "</CompleteMultipartUpload>";
    const signed = await sign({ method: "POST", upload_id: target.upload_id });
    const headers = Object.assign({ "Content-Type": "application/xml" }, signed.headers || {});
    await s3Request(Object.assign({}, signed, { headers }), "POST", body);
    forget(key);
    row.progress(1);
  }

  async function waitForImage(id, onPoll) {
    const started = Date.now();
    let interval = 300;
    for (;;) {
      const image = await api("GET", "/images/" + encodeURIComponent(id));
      onPoll(image);
      if (!SETTLING.has(image.status)) return image;
      if (Date.now() - started > POLL_TIMEOUT_MS) {
        return Object.assign({}, image, { _timeout: true });
      }
      await sleep(interval);
      interval = Math.min(interval * 1.5, 2000);
    }
  }

  // A tiny promise pool: at most `limit` jobs run at once.
  function pool(limit) {
    let active = 0;
    const queue = [];
    const next = () => {
      if (active >= limit || !queue.length) return;
      active++;
      const { job, resolve } = queue.shift();
      Promise.resolve().then(job).then(resolve, resolve).finally(() => { active--; next(); });
    };
    return (job) => new Promise((resolve) => { queue.push({ job, resolve }); next(); });
  }
  const run = pool(CONCURRENCY);

  function duplicateLink(id, label) {
    const a = document.createElement("a");
    a.href = "#image-" + id;
    a.textContent = label || "see the existing image";
    a.addEventListener("click", (e) => { e.preventDefault(); showExisting(id); });
    return a;
  }

  function statusNode(text, link) {
    const span = document.createElement("span");
    span.append(text + " ");
    if (link) span.append(link);
    return span;
  }

  async function showExisting(id) {
    let card = document.getElementById("image-" + id);
    if (!card) {
      try {
        card = renderCard(await api("GET", "/images/" + encodeURIComponent(id)));
      } catch (e) {
        showBanner(e);
        return;
      }
    }
    card.scrollIntoView({ behavior: "smooth", block: "center" });
    card.classList.remove("flash");
    void card.offsetWidth;
    card.classList.add("flash");
  }

  function settle(row, image) {
    if (image._timeout) {
      row.status("timeout", words("wait_timeout"));
    } else if (image.status === "ready") {
      const tagProblems = (image.tags || []).filter((t) => t && t.error);
      row.status("ready", tagProblems.length ? "ready · " + words("tag_error") : "ready");
    } else if (image.status === "duplicate") {
      row.status("duplicate", statusNode("duplicate:", duplicateLink(image.duplicate_of || image.id)));
    } else {
      const err = (image.errors && image.errors[0]) || image.error || { code: image.status };
      row.status(image.status || "failed", (image.status || "failed") + ": " + words(err));
    }
    renderCard(image);
  }

  // Settles a row from the error of a transfer: an interruption keeps the upload resumable.
  function transferFailed(row, e, resumable) {
    if (e instanceof Interrupted) {
      row.status("interrupted", words("interrupted"));
    } else {
      const err = (e.errors && e.errors[0]) || { code: "upload_failed", title: String(e.message || e) };
      row.status("error", words(err) + (resumable ? " " + words("interrupted") : ""));
    }
  }

  async function waitAndSettle(row, id) {
    row.status("processing", "processing…");
    try {
      settle(row, await waitForImage(id, (img) => {
        if (SETTLING.has(img.status)) row.status(img.status, img.status + "…");
      }));
    } catch (e) {
      row.status("error", words(e.errors[0]));
      if (e.status === 401) showBanner(e);
    }
  }

  // A remembered multipart upload of this very file: list, send the missing parts, complete.
  // Gone (404), past its window or closed (409): a new upload replaces it.
  async function resumeFile(file, row, sha256, key, record) {
    try {
      await sendMultipart(file, row, Object.assign({}, record), key);
    } catch (e) {
      const gone = e instanceof ApiError && (e.status === 404 || e.status === 409 || e.s3Code === "NoSuchUpload");
      if (!gone) {
        transferFailed(row, e, true);
        return;
      }
      forget(key);
      row.progress(0);
      let answer;
      try {
        answer = ((await api("POST", "/uploads", { items: [itemFor(file, sha256)] })) || {}).items[0];
      } catch (e2) {
        row.status("error", words(e2.errors[0]));
        return;
      }
      await handleAnswer(file, row, answer || { error: { code: "upload_failed" } }, key);
      return;
    }
    await waitAndSettle(row, record.image_id);
  }

  async function handleAnswer(file, row, answer, key) {
    if (answer.upload && answer.id && answer.upload.method === "multipart") {
      const upload = answer.upload;
      try {
        await sendMultipart(file, row, {
          image_id: answer.id, sign_url: upload.sign_url, key: upload.key,
          part_size: upload.part_size, expires_at: upload.expires_at,
        }, key);
      } catch (e) {
        transferFailed(row, e, Boolean(recall(key)));
        return;
      }
      await waitAndSettle(row, answer.id);
      return;
    }
    if (answer.upload && answer.id) {
      row.status("uploading", "uploading…");
      try {
        await postToStorage(answer.upload, file, (f) => row.progress(f));
      } catch (e) {
        row.status("error", words(e.errors[0]));
        return;
      }
      row.status("processing", "processing…");
      try {
        settle(row, await waitForImage(answer.id, (img) => {
          if (SETTLING.has(img.status)) row.status(img.status, img.status + "…");
        }));
      } catch (e) {
        row.status("error", words(e.errors[0]));
        if (e.status === 401) showBanner(e);
      }
      return;
    }
    if (answer.status === "duplicate") {
      row.progress(1);
      row.status("duplicate", statusNode(words("image_already_exists"), duplicateLink(answer.id)));
      return;
    }
    const err = answer.error || { code: "upload_failed", title: "No upload was offered." };
    row.status("error", words(err) + (err.source && err.source.pointer ? " (" + err.source.pointer.split("/").pop() + ")" : ""));
  }

  async function uploadFiles(fileList) {
    const files = Array.from(fileList).filter((f) => f.size >= 0);
    if (!files.length) return;
    hideBanner();
    const rows = files.map(addRow);
    for (let start = 0; start < files.length; start += BATCH) {
      const batch = files.slice(start, start + BATCH);
      const batchRows = rows.slice(start, start + BATCH);
      batchRows.forEach((r) => r.status("hashing", "hashing…"));
      const hashes = [];
      for (let i = 0; i < batch.length; i++) {
        const f = batch[i];
        const row = batchRows[i];
        try {
          hashes.push(await sha256Hex(f, (x) => row.status("hashing", "hashing " + Math.round(x * 100) + "%")));
        } catch (e) { hashes.push(null); }
      }
      // Files with a remembered multipart upload resume it; the others ask POST /uploads.
      const keys = batch.map((f, i) => (wantsMultipart(f) ? resumeKey(f, hashes[i]) : null));
      const fresh = [];
      batch.forEach((file, i) => {
        const record = recall(keys[i]);
        if (record) {
          batchRows[i].status("queued", "queued (resumable)");
          run(() => resumeFile(file, batchRows[i], hashes[i], keys[i], record));
        } else {
          fresh.push(i);
        }
      });
      if (!fresh.length) continue;
      let answers;
      try {
        const body = await api("POST", "/uploads", { items: fresh.map((i) => itemFor(batch[i], hashes[i])) });
        answers = (body && body.items) || [];
      } catch (e) {
        fresh.forEach((i) => batchRows[i].status("error", words(e.errors[0])));
        showBanner(e);
        continue;
      }
      fresh.forEach((i, j) => {
        const row = batchRows[i];
        row.status("queued", "queued");
        run(() => handleAnswer(batch[i], row, answers[j] || { error: { code: "upload_failed" } }, keys[i]));
      });
    }
  }

  els.input.addEventListener("change", () => {
    uploadFiles(els.input.files);
    els.input.value = "";
  });
  ["dragenter", "dragover"].forEach((type) => els.drop.addEventListener(type, (e) => {
    e.preventDefault();
    els.drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => els.drop.addEventListener(type, () => els.drop.classList.remove("over")));
  els.drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files) uploadFiles(e.dataTransfer.files);
  });
  // Pasting an image (a screenshot) uploads it too; pasting text into the token box does not.
  document.addEventListener("paste", (e) => {
    if (e.target === els.token || e.target.tagName === "INPUT") return;
    const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
    if (files.length) uploadFiles(files);
  });

  // ------------------------------------------------------------------ gallery cards

  // <picture>: one <source> per format the image's srcset lists (AVIF, then WebP, ...), the <img>
  // keeping the fallback format's srcset. The card is one grid column (style.css: minmax(220px, 1fr)
  // in a main of at most 1100px with 1rem padding and 1rem gaps): 1 column below 488px, 2 below
  // 724px, 3 below 960px, then 4 of at most 255px.
  const MIME = { avif: "image/avif", webp: "image/webp", jpeg: "image/jpeg", png: "image/png", gif: "image/gif" };
  const SOURCE_ORDER = ["avif", "webp", "png", "gif", "jpeg"];
  const CARD_SIZES = "(max-width: 487px) calc(100vw - 2rem), (max-width: 723px) calc(50vw - 1.5rem), "
    + "(max-width: 959px) calc(33.3vw - 1.34rem), (max-width: 1100px) calc(25vw - 1.25rem), 255px";

  function fallbackFormat(image, thumb) {
    if (thumb && thumb.format && thumb !== image.original) return thumb.format;
    const any = Object.values(image.variants || {}).find((v) => v && v.format);
    return any ? any.format : null;
  }

  function fillPicture(picture, img, image, thumb) {
    const srcset = image.srcset || {};
    const fallback = fallbackFormat(image, thumb);
    const rank = (f) => (SOURCE_ORDER.includes(f) ? SOURCE_ORDER.indexOf(f) : SOURCE_ORDER.length);
    const formats = Object.keys(srcset).filter((f) => srcset[f] && f !== fallback).sort((a, b) => rank(a) - rank(b));
    for (const fmt of formats) {
      const source = document.createElement("source");
      source.type = MIME[fmt] || "image/" + fmt;
      source.srcset = srcset[fmt];
      source.sizes = CARD_SIZES;
      picture.insertBefore(source, img);
    }
    if (fallback && srcset[fallback]) {
      img.sizes = CARD_SIZES;
      img.srcset = srcset[fallback];
    }
    img.src = thumb.url;
  }

  function pickThumb(image) {
    const variants = image.variants || {};
    for (const name of ["thumb", "m", "medium", "small", "s", "large"]) {
      if (variants[name] && variants[name].url) return variants[name];
    }
    const list = Object.values(variants).filter((v) => v && v.url);
    list.sort((a, b) => (a.width || 0) - (b.width || 0));
    return list.find((v) => (v.width || 0) >= 200) || list[list.length - 1] || image.original || null;
  }

  function lookup(obj, names) {
    if (!obj) return undefined;
    const keys = Object.keys(obj);
    for (const name of names) {
      const key = keys.find((k) => k.toLowerCase() === name.toLowerCase());
      if (key !== undefined && obj[key] !== null && obj[key] !== "") return obj[key];
    }
    return undefined;
  }

  function exifSummary(image) {
    const exif = image.exif || {};
    const make = lookup(exif, ["Make", "camera_make"]);
    const model = lookup(exif, ["Model", "camera_model", "camera"]);
    let camera = model ? String(model) : "";
    if (make && !camera.toLowerCase().startsWith(String(make).toLowerCase())) camera = (make + " " + camera).trim();
    const parts = [];
    parts.push(camera ? "Camera: " + camera : "no camera info");
    const taken = image.taken_at || lookup(exif, ["DateTimeOriginal", "DateTime"]);
    if (taken) parts.push("taken " + String(taken).replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC"));
    parts.push(image.gps && image.gps.lat != null ? "GPS " + Number(image.gps.lat).toFixed(4) + ", " + Number(image.gps.lon).toFixed(4) : "no GPS");
    return parts.join(" · ");
  }

  function renderCard(image) {
    const id = "image-" + image.id;
    const card = $("#card").content.firstElementChild.cloneNode(true);
    card.id = id;
    card.dataset.status = image.status || "";
    card.dataset.imageId = image.id || "";

    const frame = $(".frame", card);
    const w = image.width, h = image.height;
    if (w && h) frame.style.aspectRatio = w + " / " + h;
    const canvas = $("canvas.blur", card);
    if (image.blurhash && window.Blurhash && Blurhash.isValid(image.blurhash)) {
      try { Blurhash.paint(canvas, image.blurhash); canvas.dataset.painted = "1"; } catch (e) { canvas.hidden = true; }
    } else {
      canvas.hidden = true;
    }
    const thumb = pickThumb(image);
    const picture = $("picture", card);
    const img = $("img.thumb", card);
    img.alt = image.title || image.filename || image.id;
    if (thumb && image.status !== "failed") {
      img.addEventListener("load", () => { card.classList.add("loaded"); });
      img.addEventListener("error", () => {
        // A <source> whose image fails does not make the browser try the next one: drop it (the
        // <img> then picks again: WebP after AVIF, then its fallback); the fallback failing hides it.
        const sources = Array.from(picture.querySelectorAll("source"));
        const failed = sources.find((s) => s.srcset.split(",").some((c) => c.trim().split(/\s+/)[0] === img.currentSrc));
        if (failed) failed.remove();
        else if (sources.length) sources.forEach((s) => s.remove());
        else img.hidden = true;
      });
      fillPicture(picture, img, image, thumb);
    } else {
      img.hidden = true;
    }

    $(".title", card).textContent = image.title || image.filename || image.id;
    const facts = [];
    if (w && h) facts.push(w + " × " + h);
    if (image.format) facts.push(String(image.format).toUpperCase());
    if (image.bytes != null) facts.push(formatBytes(image.bytes));
    if (image.status && image.status !== "ready") facts.push(image.status);
    $(".facts", card).textContent = facts.join(" · ");

    const swatches = $(".swatches", card);
    for (const c of image.colors || []) {
      const s = document.createElement("span");
      s.className = "swatch";
      s.style.background = c.hex;
      s.title = c.hex + (c.percent != null ? " · " + Math.round(c.percent) + "%" : "");
      swatches.append(s);
    }

    $(".exif", card).textContent = image.status === "ready" || image.status === "duplicate" ? exifSummary(image) : "";

    const problems = $(".problems", card);
    const errs = (image.errors || []).slice();
    for (const t of image.tags || []) if (t && t.error) errs.push({ code: t.error, title: "tag " + t.id });
    for (const e of errs) {
      const p = document.createElement("span");
      p.className = "problem";
      p.textContent = words(e) + (e.code === "tag_error" && e.title ? " (" + e.title + ")" : "");
      p.title = e.code || "";
      problems.append(p);
    }
    if (image.status === "duplicate" && image.duplicate_of) {
      problems.append(statusNode("Duplicate of", duplicateLink(image.duplicate_of, image.duplicate_of)));
    }

    const existing = document.getElementById(id);
    if (existing) existing.replaceWith(card);
    else els.gallery.prepend(card);
    els.galleryTitle.hidden = false;
    return card;
  }

  // Exposed for tests and the console.
  window.imgdrop = {
    uploadFiles, apiBase, token, words, ERROR_WORDS, show: showExisting,
    resumable: loadRecords, multipartThreshold: MULTIPART_THRESHOLD, planParts,
  };

  loadSettings();
  checkHealth();
})();
