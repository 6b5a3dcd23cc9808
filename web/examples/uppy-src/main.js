// Uppy 6's Dashboard uploading to imgdrop, with @uppy/aws-s3's one hook, `signRequest`.
//
// 1. A pre-processor asks imgdrop `POST /v1/uploads` for each file (filename, content_type,
//    size, sha256, and `multipart: true` above 100 MiB) and keeps the answer by the key imgdrop
//    issued. (Uppy 6 calls `generateObjectKey(file)` synchronously and `signRequest` without
//    the file, so the ask must come first: pre-processors run, and are awaited, before uploaders.)
// 2. `generateObjectKey(file)` returns that key; `shouldUseMultipart(file)` follows the answer.
// 3. `signRequest({method, key, uploadId, partNumber})` maps onto imgdrop:
//    - a presigned POST answer (small files): `{url, fields}` as is (@uppy/aws-s3 >= 6.3 then
//      POSTs the fields and the file as a form);
//    - a multipart answer: `POST {sign_url}` with `{method, upload_id, part_number}`, whose
//      `{url, headers}` presign create, each part, list, complete and abort for that key only.
// 4. On `upload-success`, poll `GET /v1/images/{id}` until the image settles.
// Nothing else on the server: no Companion, no credentials in the browser.
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import AwsS3 from "@uppy/aws-s3";
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";

const TOKEN_KEY = "imgdrop.token"; // shared with the uploader page (same origin)
const SETTLING = new Set(["pending", "processing"]);
const MiB = 1024 * 1024;
const HASH_LIMIT = 256 * MiB; // WebCrypto digests a whole buffer: larger files skip the early duplicate check

const params = new URLSearchParams(window.location.search);
// The API's MULTIPART_THRESHOLD_BYTES is 100 MiB (as Uppy's own default); ?multipart_threshold=
// lowers it here, and a smaller file then asks for `"multipart": true`.
const MULTIPART_THRESHOLD = Number(params.get("multipart_threshold")) || 100 * MiB;
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

// `path` under /v1, or an absolute URL imgdrop handed out (`sign_url`).
async function api(method, path, body) {
  const url = /^https?:\/\//.test(path) ? path : apiBase() + "/v1" + path;
  const response = await fetch(url, {
    method,
    headers: Object.assign(
      { Accept: "application/json", Authorization: "Bearer " + token() },
      body ? { "Content-Type": "application/json" } : {},
    ),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const first = (data && data.errors && data.errors[0]) || { code: "http_" + response.status };
    const error = new Error(first.title || first.code);
    error.status = response.status;
    error.code = first.code;
    throw error;
  }
  return data;
}

async function sha256Hex(blob) {
  if (!(window.crypto && crypto.subtle) || blob.size > HASH_LIMIT) return null;
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
  li.dataset.imageId = image.id || "";
  const err = (image.errors && image.errors[0]) || image.error;
  li.querySelector(".status").textContent =
    image.status + (image.duplicate_of ? " of " + image.duplicate_of : "") + (err ? " — " + (err.title || err.code) : "");
  const thumb = image.variants && (image.variants.thumb || image.variants.small || Object.values(image.variants)[0]);
  if (thumb && thumb.url) li.querySelector("img").src = thumb.url;
}

// imgdrop's answers by the key it issued: {id, upload}. signRequest gets only the key.
const issued = new Map();

const uppy = new Uppy({
  autoProceed: true,
  restrictions: { allowedFileTypes: ["image/*", ".heic", ".heif", ".avif"] },
});

uppy.use(Dashboard, {
  inline: true,
  target: "#uppy",
  height: 380,
  proudlyDisplayPoweredByUppy: false,
  note: "Images go straight to storage: one presigned POST, or S3 multipart above 100 MiB.",
});

function stillValid(answer) {
  // A presigned POST lives 15 minutes; a multipart upload is signed request by request.
  return answer.upload.method === "multipart" || Date.parse(answer.upload.expires_at) - Date.now() > 60_000;
}

// Step 1: POST /v1/uploads for each file before Uppy's uploader starts.
uppy.addPreProcessor(async (fileIDs) => {
  await Promise.all(fileIDs.map(async (fileID) => {
    const file = uppy.getFile(fileID);
    if (!file) return;
    const known = file.meta.imgdropKey && issued.get(file.meta.imgdropKey);
    if (known && stillValid(known)) return; // a retry: keep the upload (a multipart one resumes)
    uppy.emit("preprocess-progress", file, { mode: "indeterminate", message: "Asking imgdrop…" });
    try {
      const item = {
        filename: file.name,
        content_type: file.type || "application/octet-stream",
        size: file.size,
      };
      const sha256 = await sha256Hex(file.data);
      if (sha256) item.sha256 = sha256;
      if (file.size > MULTIPART_THRESHOLD) item.multipart = true;
      const answer = (await api("POST", "/uploads", { items: [item] })).items[0];
      if (!answer.upload) {
        if (answer.status === "duplicate") {
          show(file, { id: answer.id, status: "duplicate", duplicate_of: answer.id });
          uppy.emit("upload-error", file, new Error("Already uploaded as " + answer.id));
        } else {
          const err = answer.error || {};
          show(file, { status: "error", error: err });
          uppy.emit("upload-error", file, new Error(err.title || err.code || "imgdrop offered no upload"));
        }
        return; // a file with an error is not uploaded
      }
      const key = answer.upload.method === "multipart" ? answer.upload.key : answer.upload.fields.key;
      issued.set(key, answer);
      uppy.setFileMeta(fileID, { imgdropId: answer.id, imgdropKey: key });
    } catch (e) {
      show(file, { status: "error", error: { title: e.message } });
      uppy.emit("upload-error", file, e);
    } finally {
      uppy.emit("preprocess-complete", uppy.getFile(fileID) || file);
    }
  }));
});

uppy.use(AwsS3, {
  // Step 2: the key imgdrop issued, and multipart exactly when imgdrop answered multipart.
  generateObjectKey(file) {
    const key = uppy.getFile(file.id)?.meta.imgdropKey;
    if (!key) throw new Error("imgdrop issued no key for " + file.name);
    return key;
  },
  shouldUseMultipart(file) {
    const answer = issued.get(uppy.getFile(file.id)?.meta.imgdropKey);
    return Boolean(answer && answer.upload.method === "multipart");
  },
  // imgdrop advises parts of at least 8 MiB, at most 10,000 of them (any size is signed).
  getChunkSize: ({ size }) => Math.max(8 * MiB, Math.ceil(size / 10000)),
  allowedMetaFields: [],
  // Step 3: one signer for every S3 request.
  async signRequest({ method, key, uploadId, partNumber }) {
    const answer = issued.get(key);
    if (!answer) throw new Error("imgdrop issued no upload for " + key);
    const { upload } = answer;
    if (upload.method !== "multipart") {
      return { url: upload.url, fields: upload.fields }; // the presigned POST form
    }
    const signed = await api("POST", upload.sign_url, { method, upload_id: uploadId, part_number: partNumber });
    return { url: signed.url, headers: signed.headers || {} };
  },
});

// Step 4: the image settles (ready, duplicate or failed).
uppy.on("upload-success", async (file) => {
  const current = uppy.getFile(file.id) || file;
  const id = current.meta.imgdropId;
  if (!id) return;
  issued.delete(current.meta.imgdropKey);
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
