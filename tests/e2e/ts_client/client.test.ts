// A client generated from imgdrop's /v1/openapi.json, used unchanged: `api.d.ts` is written by
// openapi-typescript from the running stack's document just before this file is type-checked
// (tsc, strict) and run (node --test). tests/e2e/test_generated_client.py drives it.
import assert from "node:assert/strict";
import { test } from "node:test";

import createClient from "openapi-fetch";

import type { components, paths } from "./api.js";

type Image = components["schemas"]["Image"];
type ErrorBody = components["schemas"]["ErrorBody"];

const baseUrl = process.env.IMGDROP_API ?? "http://127.0.0.1:3000";
const token = process.env.IMGDROP_TOKEN ?? "";
const png = process.env.IMGDROP_TEST_PNG ?? ""; // a PNG of its own for this run, base64

const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

function isImage(body: object): body is Image {
  return "variants" in body && "status" in body;
}

async function readUntilSettled(id: string): Promise<Image> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { data, error, response } = await client.GET("/v1/images/{image_id}", {
      params: { path: { image_id: id } },
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    if (!["pending", "processing"].includes(data.status)) return data;
    assert.ok(Date.now() < deadline, `${id} still ${data.status}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test("upload a data URI, read it back until ready, list it, and get a typed 404", async () => {
  assert.ok(token && png, "IMGDROP_TOKEN and IMGDROP_TEST_PNG are set by test_generated_client.py");

  const created = await client.POST("/v1/images", {
    body: { file: `data:image/png;base64,${png}`, title: "Generated client", rating: 5, privacy: "public" },
  });
  assert.equal(created.response.status, 201, JSON.stringify(created.error));
  assert.ok(created.data && isImage(created.data), "a JSON upload answers the image object");
  const uploaded: Image = created.data;
  assert.equal(uploaded.title, "Generated client");
  assert.equal(uploaded.links.self, created.response.headers.get("location"));

  const ready = await readUntilSettled(uploaded.id);
  assert.equal(ready.status, "ready");
  assert.equal(ready.rating, 5);
  assert.ok(ready.width && ready.height && ready.original, "dimensions and original once ready");
  const variants = Object.values(ready.variants);
  assert.ok(variants.length > 0);
  for (const variant of variants) {
    assert.ok(variant.url.startsWith("http") && variant.width > 0 && variant.format);
    assert.ok(variant.formats[variant.format], "the fallback is one of the formats");
  }

  const page = await client.GET("/v1/images", { params: { query: { limit: 10, status: "ready" } } });
  assert.equal(page.response.status, 200, JSON.stringify(page.error));
  assert.ok(page.data);
  assert.ok(page.data.items.some((image: Image) => image.id === uploaded.id), "the list holds the upload");

  const missing = await client.GET("/v1/images/{image_id}", {
    params: { path: { image_id: "01NOSUCHIMAGE" } },
  });
  assert.equal(missing.response.status, 404);
  assert.equal(missing.data, undefined);
  const notFound: ErrorBody | undefined = missing.error;
  assert.ok(notFound);
  assert.equal(notFound.errors[0]?.code, "not_found");
  assert.equal(notFound.errors[0]?.status, "404");

  const invalid = await client.PATCH("/v1/images/{image_id}", {
    params: { path: { image_id: uploaded.id } },
    body: { rating: 9 },
  });
  assert.equal(invalid.response.status, 400);
  const fieldError = invalid.error?.errors[0];
  assert.deepEqual([fieldError?.code, fieldError?.source?.pointer], ["rating_inclusion", "/rating"]);
});
