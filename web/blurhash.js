// A small BlurHash decoder (https://blurha.sh), written for imgdrop after the MIT-licensed
// reference implementation by Wolt (github.com/woltapp/blurhash, TypeScript `decode`).
// decodeBlurhash(hash, width, height, punch) -> Uint8ClampedArray of RGBA pixels.
// paintBlurhash(canvas, hash) draws it on a small canvas that CSS stretches.
(function (global) {
  "use strict";
  const DIGITS =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

  function decode83(str) {
    let value = 0;
    for (const ch of str) {
      const digit = DIGITS.indexOf(ch);
      if (digit < 0) throw new Error("blurhash: invalid character " + ch);
      value = value * 83 + digit;
    }
    return value;
  }

  function sRGBToLinear(value) {
    const v = value / 255;
    return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }

  function linearTosRGB(value) {
    const v = Math.max(0, Math.min(1, value));
    return v <= 0.0031308
      ? Math.round(v * 12.92 * 255 + 0.5)
      : Math.round((1.055 * Math.pow(v, 1 / 2.4) - 0.055) * 255 + 0.5);
  }

  function signPow(value, exp) {
    return Math.sign(value) * Math.pow(Math.abs(value), exp);
  }

  function isValid(hash) {
    if (typeof hash !== "string" || hash.length < 6) return false;
    const size = decode83(hash[0]);
    const numY = Math.floor(size / 9) + 1;
    const numX = (size % 9) + 1;
    return hash.length === 4 + 2 * numX * numY;
  }

  function decodeBlurhash(hash, width, height, punch) {
    if (!isValid(hash)) throw new Error("blurhash: invalid hash");
    punch = punch || 1;
    const size = decode83(hash[0]);
    const numY = Math.floor(size / 9) + 1;
    const numX = (size % 9) + 1;
    const maximumValue = (decode83(hash[1]) + 1) / 166;
    const colors = new Array(numX * numY);

    const dc = decode83(hash.substring(2, 6));
    colors[0] = [sRGBToLinear(dc >> 16), sRGBToLinear((dc >> 8) & 255), sRGBToLinear(dc & 255)];
    for (let i = 1; i < colors.length; i++) {
      const ac = decode83(hash.substring(4 + i * 2, 6 + i * 2));
      const r = Math.floor(ac / (19 * 19));
      const g = Math.floor(ac / 19) % 19;
      const b = ac % 19;
      colors[i] = [
        signPow((r - 9) / 9, 2) * maximumValue * punch,
        signPow((g - 9) / 9, 2) * maximumValue * punch,
        signPow((b - 9) / 9, 2) * maximumValue * punch,
      ];
    }

    const pixels = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let r = 0, g = 0, b = 0;
        for (let j = 0; j < numY; j++) {
          const basisY = Math.cos((Math.PI * y * j) / height);
          for (let i = 0; i < numX; i++) {
            const basis = Math.cos((Math.PI * x * i) / width) * basisY;
            const color = colors[i + j * numX];
            r += color[0] * basis;
            g += color[1] * basis;
            b += color[2] * basis;
          }
        }
        const p = 4 * (x + y * width);
        pixels[p] = linearTosRGB(r);
        pixels[p + 1] = linearTosRGB(g);
        pixels[p + 2] = linearTosRGB(b);
        pixels[p + 3] = 255;
      }
    }
    return pixels;
  }

  function paintBlurhash(canvas, hash) {
    const w = canvas.width || 32, h = canvas.height || 32;
    const pixels = decodeBlurhash(hash, w, h);
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(w, h);
    image.data.set(pixels);
    ctx.putImageData(image, 0, 0);
  }

  global.Blurhash = { decode: decodeBlurhash, isValid: isValid, paint: paintBlurhash };
})(typeof window !== "undefined" ? window : globalThis);
