"""The cost of a million 12 MP images, from what the code does (not from a spreadsheet).

- Lambda: GB-s = measured duration x each function's MemorySize in template.yaml, plus the
  per-request price. The process function's render is timed (and its peak RSS taken) on a 12 MP
  photo in a fresh subprocess pinned to one CPU, as bench/bench_formats.py does; the rest of
  the process function, the api, authorizer, finalize and webhooks functions are timed warm
  in-process against moto (bench/awsrun.py: uploads after the first, so imports are not
  counted, with the recorder off), so their AWS calls take moto's time, not AWS's.
- Requests to S3, DynamoDB (read and write request units, index writes included), SQS,
  EventBridge, Secrets Manager, API Gateway: counted from an in-process run of the functions
  against moto, each AWS call recorded by a botocore event hook: POST /v1/uploads, the
  client's upload to S3, process, finalize, the webhook delivery (one endpoint subscribed),
  one GET of the image.
- CloudFront: a view pattern (VIEWS below, an assumption) over the sizes of the variants the
  run stored, each view running the auto-format CloudFront Function, a cache miss fetching
  from S3.

Prices: us-east-1 list prices (PRICES_AS_OF), first tier, no free tier, on-demand DynamoDB,
x86_64 Lambda (template.yaml's architecture). Storage is shown below the total, not in it.

Run: ``PYTHONPATH=layers/core .venv/bin/python bench/cost.py [--timed 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import awsrun  # noqa: E402

# us-east-1 list prices, USD. Lambda, S3, CloudFront, API Gateway, SQS, EventBridge and
# Secrets Manager unchanged since 2023; DynamoDB on-demand halved on 2024-11-01.
PRICES_AS_OF = "2026-12-01"
PRICE = {
    "lambda_gb_s": 0.0000166667,  # x86_64, first 6 billion GB-s a month
    "lambda_request": 0.20 / 1e6,
    "apigw_http_request": 1.00 / 1e6,  # HTTP API, first 300 million a month
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1000,  # GET, SELECT and all other requests (DELETE is free)
    "ddb_wru": 0.625 / 1e6,  # on-demand write request unit
    "ddb_rru": 0.125 / 1e6,  # on-demand read request unit
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "events_put": 1.00 / 1e6,  # EventBridge custom events
    "secrets_call": 0.05 / 10_000,
    "cf_request": 0.0100 / 10_000,  # HTTPS requests, United States
    "cf_gb": 0.085,  # data transfer out to the internet, United States, first 10 TB
    "cf_function": 0.10 / 1e6,  # CloudFront Functions invocations
    "s3_gb_month": 0.023,  # S3 Standard, first 50 TB (storage: shown, not in the total)
    "ddb_gb_month": 0.25,
}

# Assumption: each image is seen 100 times through the CDN over its life, mostly small:
# (variant, views). Browsers get WebP where the profile made it (the auto-format function),
# 90 % of views are CloudFront cache hits; a miss is one S3 GET.
VIEWS = {"thumb": 60, "small": 25, "medium": 10, "large": 5}
CACHE_HIT = 0.90
PREFERRED_FORMAT = "webp"

S3_PUT_CLASS = {
    "PutObject",
    "CopyObject",
    "PostObject",
    "ListObjectsV2",
    "ListObjects",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
}
S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}


# --- the render, in a subprocess -------------------------------------------------------------


def worker(path: str, repeat: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    import pyvips  # noqa: F401

    from imgdrop.pipeline import render

    data = Path(path).read_bytes()
    render(data, "default")  # cold: imports and caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        render(data, "default")
        times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ms": statistics.median(times) * 1000, "rss_mb": rss}))


def measure_render(data: bytes, repeat: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
        f.write(data)
        f.flush()
        env = {**os.environ, "PYTHONPATH": str(awsrun.ROOT / "layers" / "core")}
        out = subprocess.run(
            [sys.executable, __file__, "--worker", f.name, "--repeat", str(repeat)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    if out.returncode:
        raise RuntimeError(out.stderr)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the run ---------------------------------------------------------------------------------


def record(timed: int) -> dict[str, Any]:
    """Distinct 12 MP photos through the stack: one cold upload, ``timed`` warm ones timed with
    the recorder off (its probes would slow the calls), then one recorded for the counts."""
    import imgdrop.pipeline
    from imgdrop.store.db import image_pk, image_sk

    sources = [("china", False), ("flower", False), ("china", True), ("flower", True)]
    photos = [awsrun.photo_12mp(name, mirror=mirror) for name, mirror in sources]
    if timed + 2 > len(photos):
        raise SystemExit(f"at most {len(photos) - 2} timed uploads")
    render_times: list[float] = []
    original_render = imgdrop.pipeline.render

    def timed_render(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original_render(*args, **kwargs)
        finally:
            render_times.append(time.perf_counter() - t0)

    imgdrop.pipeline.render = timed_render  # type: ignore[assignment]
    try:
        with awsrun.recorded_stack() as run:
            run.add_webhook()
            run.recorder.enabled = False
            ids = [run.upload(photos[0])]  # cold
            run.recorder.timings.clear()
            ids += [run.upload(data) for data in photos[1 : timed + 1]]
            durations = {fn: times[1:] for fn, times in run.durations.items()}  # warm: skip the cold one
            in_calls: dict[str, float] = defaultdict(float)
            for fn in durations:
                spans = [(t0, t1) for f, t0, t1 in run.recorder.timings if f == fn]
                in_calls[fn] = awsrun.busy_time(spans) / timed
            renders = render_times[1:]
            run.recorder.enabled = True
            ids.append(run.upload(photos[timed + 1]))
            counted = ids[-1]
            variants = []
            for image_id in ids[1:]:
                item = run.setup(
                    run.aws.dynamodb.get_item,
                    TableName=run.aws.table_name,
                    Key={"pk": {"S": image_pk("acme", image_id)}, "sk": {"S": image_sk(image_id)}},
                )["Item"]
                variants.append(json.loads(item["variants"]["S"]))
            authorizer = time_authorizer(run)
            calls = [c for c in run.recorder.calls if c.upload == len(ids) - 1]
            memory = {
                fn: run.aws.stack.function(fn).memory_mb for fn in (*run.durations, "AuthorizerFunction")
            }
    finally:
        imgdrop.pipeline.render = original_render  # type: ignore[assignment]
    assert counted and calls
    return {
        "calls": calls,
        "warm": timed,
        "durations": durations,
        "in_calls": dict(in_calls),
        "render_in_process": renders,
        "memory": memory,
        "authorizer_s": authorizer,
        "variants": variants,
        "original_bytes": statistics.mean(len(p) for p in photos[1 : timed + 2]),
    }


def time_authorizer(run: awsrun.Run, repeat: int = 20) -> float:
    """The authorizer on a valid token, warm (API Gateway calls it on every request: no caching)."""
    from imgdrop_local.tokens import issue_token

    token = issue_token(run.aws.jwt_secret, tenant="acme", scope="images:read images:write")
    event = awsrun.json.loads((awsrun.ROOT / "events" / "authorizer_no_token.json").read_text())
    event["headers"]["authorization"] = f"Bearer {token}"
    run.setup(run.functions.invoke, "AuthorizerFunction", event)  # cold
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run.setup(run.functions.invoke, "AuthorizerFunction", event)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- the bill ------------------------------------------------------------------------------------


def bill(
    rec: dict[str, Any], render: dict[str, float]
) -> tuple[list[tuple[str, str, float, float]], dict[str, Any]]:
    """Rows of (item, quantity per image as text, quantity per image, $ per million images)."""
    timed = rec["warm"]
    n = 1  # the calls are one upload's
    calls: list[awsrun.Call] = rec["calls"]
    rows: list[tuple[str, str, float, float]] = []
    info: dict[str, Any] = {}

    # Lambda
    per_fn_s: dict[str, float] = {}
    invocations: Counter[str] = Counter()
    for fn, times in rec["durations"].items():
        per_fn_s[fn] = sum(times) / timed
        invocations[fn] = len(times) // timed
    render_in_process = statistics.mean(rec["render_in_process"])
    process_rest = max(0.0, per_fn_s["ProcessFunction"] - render_in_process)
    per_fn_s["ProcessFunction"] = render["ms"] / 1000 + process_rest
    info["process_rest"] = process_rest
    info["in_calls"] = rec["in_calls"]
    api_requests = invocations["ApiFunction"]
    # billed per started millisecond
    per_fn_s["AuthorizerFunction"] = max(0.001, rec["authorizer_s"]) * api_requests
    invocations["AuthorizerFunction"] = api_requests
    info["lambda"] = {}
    for fn in sorted(per_fn_s):
        gb = rec["memory"][fn] / 1024
        gbs = per_fn_s[fn] * gb
        info["lambda"][fn] = (per_fn_s[fn], rec["memory"][fn], gbs)
        rows.append(
            (
                f"Lambda {fn.removesuffix('Function').lower()} ({rec['memory'][fn]} MB)",
                f"{invocations[fn]} x {per_fn_s[fn] / max(1, invocations[fn]) * 1000:,.1f} ms = {gbs:.4f} GB-s",
                gbs,
                1e6 * (gbs * PRICE["lambda_gb_s"] + invocations[fn] * PRICE["lambda_request"]),
            )
        )
    rows.append(
        (
            "API Gateway HTTP API",
            f"{api_requests} requests",
            api_requests,
            1e6 * api_requests * PRICE["apigw_http_request"],
        )
    )

    # S3
    s3 = Counter(c.operation for c in calls if c.service == "s3")
    put = sum(v for k, v in s3.items() if k in S3_PUT_CLASS) / n
    free = sum(v for k, v in s3.items() if k in S3_FREE) / n
    get = sum(v for k, v in s3.items() if k not in S3_PUT_CLASS | S3_FREE) / n
    detail = ", ".join(f"{k} {v / n:g}" for k, v in sorted(s3.items()) if k in S3_PUT_CLASS)
    rows.append(("S3 PUT/COPY/POST/LIST", f"{put:g} ({detail})", put, 1e6 * put * PRICE["s3_put"]))
    rows.append(("S3 GET and others", f"{get:g} (+ {free:g} free deletes)", get, 1e6 * get * PRICE["s3_get"]))

    # DynamoDB
    wru = sum(a.wcu for c in calls if c.service == "dynamodb" for a in c.accesses) / n
    rru = sum(a.rcu for c in calls if c.service == "dynamodb" for a in c.accesses) / n
    by_op = Counter(c.operation for c in calls if c.service == "dynamodb")
    index_wru = sum(a.wcu for c in calls if c.service == "dynamodb" for a in c.accesses if a.index) / n
    dedupe_wru = sum(a.wcu for c in calls if c.service == "dynamodb" for a in c.accesses if "#NX" in a.pk) / n
    dedupe_rru = sum(a.rcu for c in calls if c.service == "dynamodb" for a in c.accesses if "#NX" in a.pk) / n
    info["ddb"] = {
        "requests": {k: v / n for k, v in by_op.items()},
        "index_wru": index_wru,
        "dedupe_wru": dedupe_wru,
        "dedupe_rru": dedupe_rru,
    }
    rows.append(
        (
            "DynamoDB writes",
            f"{wru:g} WRU (indexes {index_wru:g}, dedupe {dedupe_wru:g})",
            wru,
            1e6 * wru * PRICE["ddb_wru"],
        )
    )
    rows.append(("DynamoDB reads", f"{rru:g} RRU (dedupe {dedupe_rru:g})", rru, 1e6 * rru * PRICE["ddb_rru"]))

    # SQS, EventBridge, Secrets Manager
    sent = (
        sum(
            len(c.params.get("Entries", [])) or 1
            for c in calls
            if c.service == "sqs" and c.operation.startswith("Send")
        )
        / n
    )
    sqs_requests = (
        sum(1 for c in calls if c.service == "sqs") / n + 2 * sent
    )  # + the poller's receive and delete
    rows.append(
        (
            "SQS (webhook queue)",
            f"{sqs_requests:g} requests (send + receive + delete)",
            sqs_requests,
            1e6 * sqs_requests * PRICE["sqs_request"],
        )
    )
    events = sum(len(c.params.get("Entries", [])) for c in calls if c.service == "events") / n
    rows.append(("EventBridge", f"{events:g} events", events, 1e6 * events * PRICE["events_put"]))
    secrets = sum(1 for c in calls if c.service == "secretsmanager") / n
    if secrets:
        rows.append(("Secrets Manager", f"{secrets:g} calls", secrets, 1e6 * secrets * PRICE["secrets_call"]))
    others = Counter(
        (c.service, c.operation)
        for c in calls
        if c.service not in {"s3", "dynamodb", "sqs", "events", "secretsmanager"}
    )
    info["unpriced"] = dict(others)

    # CloudFront
    views = sum(VIEWS.values())
    gb = 0.0
    for variants in rec["variants"]:
        for name, count in VIEWS.items():
            formats = (variants.get(name) or {}).get("formats") or {}
            chosen = formats.get(PREFERRED_FORMAT) or next(iter(formats.values()), {"bytes": 0})
            gb += count * chosen["bytes"] / 1e9
    gb /= len(rec["variants"])
    misses = views * (1 - CACHE_HIT)
    rows.append(("CloudFront requests", f"{views} views", views, 1e6 * views * PRICE["cf_request"]))
    rows.append(("CloudFront transfer", f"{gb * 1e3:,.2f} MB", gb, 1e6 * gb * PRICE["cf_gb"]))
    rows.append(
        (
            "CloudFront Function (auto-format)",
            f"{views} invocations",
            views,
            1e6 * views * PRICE["cf_function"],
        )
    )
    rows.append(("S3 GET (CDN cache misses)", f"{misses:g} requests", misses, 1e6 * misses * PRICE["s3_get"]))

    # storage (not in the total)
    stored = rec["original_bytes"]
    for variants in rec["variants"]:
        stored += sum(f["bytes"] for v in variants.values() for f in (v.get("formats") or {}).values()) / len(
            rec["variants"]
        )
    info["storage_gb"] = stored / 1e9
    return rows, info


def render_table(
    rows: list[tuple[str, str, float, float]], info: dict[str, Any], render: dict[str, float]
) -> str:
    total = sum(r[3] for r in rows)
    lines = [
        f"Cost per million 12 MP images (us-east-1 list prices as of {PRICES_AS_OF}; on-demand; x86_64)",
        "",
        "| item | per image | $ per million images |",
        "|---|---|---:|",
    ]
    for name, quantity, _, dollars in rows:
        lines.append(f"| {name} | {quantity} | {dollars:,.2f} |")
    lines.append(f"| **total** | | **{total:,.2f}** |")
    lines += [
        "",
        f"Process render: {render['ms']:,.0f} ms and {render['rss_mb']:,.0f} MB peak RSS on one CPU "
        f"(configured {info['lambda']['ProcessFunction'][1]} MB); the rest of the process function "
        f"{info['process_rest'] * 1000:,.0f} ms in-process, of which AWS calls answered by moto "
        f"{info['in_calls'].get('ProcessFunction', 0) * 1000:,.0f} ms.",
        "Time inside AWS calls (moto) per function and image: "
        + ", ".join(
            f"{k.removesuffix('Function').lower()} {v * 1000:,.0f} ms"
            for k, v in sorted(info["in_calls"].items())
        ),
        f"View pattern (assumed): {', '.join(f'{v} x {k}' for k, v in VIEWS.items())} per image, "
        f"{PREFERRED_FORMAT} where made, {CACHE_HIT:.0%} CDN cache hits.",
        "DynamoDB requests per image: "
        + ", ".join(f"{k} {v:g}" for k, v in sorted(info["ddb"]["requests"].items())),
        f"Storage, not in the total: {info['storage_gb'] * 1e3:,.1f} MB per image (original and variants) = "
        f"${info['storage_gb'] * 1e6 * PRICE['s3_gb_month']:,.0f} a month per million images in S3 Standard.",
    ]
    if info["unpriced"]:
        lines.append(f"Calls not priced: {info['unpriced']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timed", type=int, default=2, help="warm uploads timed (1 or 2)")
    parser.add_argument("--repeat", type=int, default=2, help="timed renders in the subprocess")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.repeat)
        return 0
    render = measure_render(awsrun.photo_12mp("flower"), args.repeat)
    rec = record(args.timed)
    rows, info = bill(rec, render)
    print(render_table(rows, info, render))
    return 0


if __name__ == "__main__":
    sys.exit(main())
