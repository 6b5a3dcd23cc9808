// Uppy's Dashboard uploading to imgdrop with no server change:
// @uppy/aws-s3 in non-multipart mode asks `getUploadParameters(file)` for a presigned
// request; we answer it from POST /v1/uploads (one item) and hand back the item's
// `upload` object ({method, url, fields}) as is. Uppy then POSTs fields + file to storage.
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import AwsS3 from "@uppy/aws-s3";
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";

const TOKEN_KEY = "imgdrop.token"; // shared with the uploader page (same origin)
const SETTLING = new Set(["pending", "processing"]);

const params = new URLSearchParams(window.location.search);
const tokenInput = document.getElementById("token");
const results = document.getElementById("results");

function apiBase() {
  return (params.get("api") || window.location.origin).replace(/\/+$/, "");
}

function token() {
  return (tokenInput.value || "").trim().replace(/^Bearer\s+/i, "");
}

try { tokenInput.value = localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { /* storage disabled */ }
tokenInput.addEventListener("input", () => {
  try { localStorage.setItem(TOKEN_KEY, token()); } catch (e) { /* ignore */ }
});

async function api(method, path, body, signal) {
  const response = await fetch(apiBase() + "/v1" + path, {
    method,
    signal,
    headers: Object.assign(
      { Accept: "application/json", Authorization: "Bearer " + token() },
      body ? { "Content-Type": "application/json" } : {},
    ),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const first = (data && data.errors && data.errors[0]) || { code: "http_" + response.status };
    throw new Error(first.title || first.code);
  }
  return data;
}

async function sha256Hex(blob) {
  if (!(window.crypto && crypto.subtle)) return null; // not a secure context: no early dedupe
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function resultRow(file) {
  let li = document.getElementById("result-" + file.id);
  if (!li) {
    li = document.createElement("li");
    li.id = "result-" + file.id;
    li.innerHTML = '<img alt=""><span class="name"></span> <span class="status"></span>';
    li.querySelector(".name").textContent = file.name;
    results.append(li);
  }
  return li;
}

function show(file, image) {
  const li = resultRow(file);
  li.dataset.status = image.status;
  li.dataset.imageId = image.id;
  const err = (image.errors && image.errors[0]) || image.error;
  li.querySelector(".status").textContent =
    image.status + (image.duplicate_of ? " of " + image.duplicate_of : "") + (err ? " — " + (err.title || err.code) : "");
  const thumb = image.variants && (image.variants.thumb || image.variants.small || Object.values(image.variants)[0]);
  if (thumb && thumb.url) li.querySelector("img").src = thumb.url;
}

const uppy = new Uppy({
  autoProceed: true,
  restrictions: { allowedFileTypes: ["image/*", ".heic", ".heif", ".avif"] },
});

uppy.use(Dashboard, {
  inline: true,
  target: "#uppy",
  height: 380,
  proudlyDisplayPoweredByUppy: false,
  note: "Images go straight to storage through imgdrop's presigned POSTs.",
});

// Uppy's default sender waits for an `ETag` it can read; a single presigned POST needs none
// (only multipart parts do), and emulators such as moto answer POST without one. This sender is
// the default one minus that wait: XHR with upload progress, any 2xx is done.
function uploadPartBytes({ signature, body, size, onProgress, onComplete, signal }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(signature.method || "POST", signature.url, true);
    for (const [name, value] of Object.entries(signature.headers || {})) xhr.setRequestHeader(name, value);
    const abort = () => xhr.abort();
    if (signal) signal.addEventListener("abort", abort);
    const done = () => signal && signal.removeEventListener("abort", abort);
    xhr.upload.addEventListener("progress", (ev) => onProgress(ev));
    xhr.addEventListener("abort", () => {
      done();
      reject(new DOMException("The upload was aborted", "AbortError"));
    });
    xhr.addEventListener("error", () => {
      done();
      reject(new Error("The upload could not reach storage"));
    });
    xhr.addEventListener("load", () => {
      done();
      if (xhr.status < 200 || xhr.status >= 300) {
        const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText || "");
        const error = new Error("Storage answered " + xhr.status + (code ? " " + code[1] : ""));
        error.source = xhr;
        reject(error);
        return;
      }
      // Only the headers CORS exposes are listed here (getResponseHeader would log the others).
      const headers = {};
      for (const line of xhr.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
        const at = line.indexOf(": ");
        if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 2);
      }
      onProgress({ loaded: size, total: size, lengthComputable: true });
      if (onComplete) onComplete(headers.etag || null);
      resolve({ ETag: headers.etag || null, location: headers.location });
    });
    xhr.send(body);
  });
}

uppy.use(AwsS3, {
  shouldUseMultipart: false,
  uploadPartBytes,
  async getUploadParameters(file, options) {
    const item = {
      filename: file.name,
      content_type: file.type || "application/octet-stream",
      size: file.size,
    };
    const sha256 = await sha256Hex(file.data);
    if (sha256) item.sha256 = sha256;
    const body = await api("POST", "/uploads", { items: [item] }, options && options.signal);
    const answer = body.items[0];
    if (!answer.upload) {
      if (answer.status === "duplicate") {
        show(file, { id: answer.id, status: "duplicate", duplicate_of: answer.id });
        throw new Error("Already uploaded as " + answer.id);
      }
      const err = answer.error || {};
      throw new Error(err.title || err.code || "imgdrop offered no upload");
    }
    uppy.setFileMeta(file.id, { imgdropId: answer.id });
    const { method, url, fields, headers } = answer.upload;
    return { method, url, fields, headers: headers || {} };
  },
});

uppy.on("upload-success", async (file) => {
  const current = uppy.getFile(file.id) || file;
  const id = current.meta.imgdropId;
  if (!id) return;
  let interval = 300;
  for (;;) {
    let image;
    try {
      image = await api("GET", "/images/" + encodeURIComponent(id));
    } catch (e) {
      show(current, { id, status: "error", error: { title: e.message } });
      return;
    }
    show(current, image);
    if (!SETTLING.has(image.status)) return;
    await new Promise((r) => setTimeout(r, interval));
    interval = Math.min(interval * 1.5, 2000);
  }
});

window.uppy = uppy;
