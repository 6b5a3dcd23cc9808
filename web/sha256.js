// An incremental SHA-256 (FIPS 180-4) in plain JavaScript, no dependency.
// WebCrypto's crypto.subtle.digest() takes the whole input at once: hashing a 2 GiB file that
// way holds 2 GiB in memory. This one is fed slices (`update`) and finishes with `hex()`, so the
// uploader hashes any file in 4 MiB steps with a progress report, in any context (crypto.subtle
// exists only in secure ones). V8 runs it at a few hundred MB/s.
(function (global) {
  "use strict";

  const K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  function Sha256() {
    this.h = new Int32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this.w = new Int32Array(64);
    this.buf = new Uint8Array(64);
    this.bufLen = 0;
    this.bytes = 0;
  }

  // One 64-byte block of `p` from `off`.
  Sha256.prototype._block = function (p, off) {
    const w = this.w;
    const h = this.h;
    for (let i = 0; i < 16; i++, off += 4) {
      w[i] = (p[off] << 24) | (p[off + 1] << 16) | (p[off + 2] << 8) | p[off + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15];
      const b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let A = h[0], B = h[1], C = h[2], D = h[3], E = h[4], F = h[5], G = h[6], H = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((E >>> 6) | (E << 26)) ^ ((E >>> 11) | (E << 21)) ^ ((E >>> 25) | (E << 7));
      const t1 = (H + S1 + ((E & F) ^ (~E & G)) + K[i] + w[i]) | 0;
      const S0 = ((A >>> 2) | (A << 30)) ^ ((A >>> 13) | (A << 19)) ^ ((A >>> 22) | (A << 10));
      const t2 = (S0 + ((A & B) ^ (A & C) ^ (B & C))) | 0;
      H = G; G = F; F = E; E = (D + t1) | 0; D = C; C = B; B = A; A = (t1 + t2) | 0;
    }
    h[0] = (h[0] + A) | 0; h[1] = (h[1] + B) | 0; h[2] = (h[2] + C) | 0; h[3] = (h[3] + D) | 0;
    h[4] = (h[4] + E) | 0; h[5] = (h[5] + F) | 0; h[6] = (h[6] + G) | 0; h[7] = (h[7] + H) | 0;
  };

  // Feed bytes (a Uint8Array, or an ArrayBuffer); returns this.
  Sha256.prototype.update = function (data) {
    const p = data instanceof Uint8Array ? data : new Uint8Array(data);
    const n = p.length;
    let off = 0;
    this.bytes += n;
    if (this.bufLen > 0) {
      const take = Math.min(64 - this.bufLen, n);
      this.buf.set(p.subarray(0, take), this.bufLen);
      this.bufLen += take;
      off = take;
      if (this.bufLen < 64) return this;
      this._block(this.buf, 0);
      this.bufLen = 0;
    }
    for (; off + 64 <= n; off += 64) this._block(p, off);
    if (off < n) {
      this.buf.set(p.subarray(off), 0);
      this.bufLen = n - off;
    }
    return this;
  };

  // The digest as 64 hex characters; the hasher is spent afterwards.
  Sha256.prototype.hex = function () {
    const bits = this.bytes * 8; // exact below 2^53
    const pad = new Uint8Array((this.bufLen < 56 ? 64 : 128) - this.bufLen);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(pad.length - 4, bits >>> 0);
    const bytes = this.bytes;
    this.update(pad);
    this.bytes = bytes;
    let out = "";
    for (let i = 0; i < 8; i++) out += (this.h[i] >>> 0).toString(16).padStart(8, "0");
    return out;
  };

  // The hex SHA-256 of a Blob (a File), read `chunk` bytes at a time; onProgress(fraction).
  Sha256.ofBlob = async function (blob, onProgress, chunk) {
    const step = chunk || 4 * 1024 * 1024;
    const hasher = new Sha256();
    for (let offset = 0; offset < blob.size; offset += step) {
      hasher.update(new Uint8Array(await blob.slice(offset, offset + step).arrayBuffer()));
      if (onProgress) onProgress(Math.min(1, (offset + step) / blob.size));
    }
    return hasher.hex();
  };

  global.Sha256 = Sha256;
})(typeof window !== "undefined" ? window : globalThis);
