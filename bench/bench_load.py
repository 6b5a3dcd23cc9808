"""Load on the local stack: N uploads, M in flight, each presigned, sent to S3 and waited on.

Starts its own local stack (tests/e2e/conftest.py's `launch_stack`) on free loopback ports,
runs the uploads from a bounded thread pool and checks that every image settles (`ready`) and
none is lost: every presigned id answers, none stays pending, the list holds them all.
Prints throughput and time-to-ready percentiles, and where the time went: the presign answer,
and from the bytes in S3 to ready.

Each upload is waited on as the CLI and the web page wait (`imgdrop_cli.api.wait_image`): GET the
image, 0.25 s later again, backing off by 1.5x, here to at most 1 s (the clients go to 2 s), so
time to ready is seen at most 1 s late. Polling at a flat 0.25 s, 20 waiting clients made the
stack answer ~80 GETs a second and measured mostly that.

    python bench/bench_load.py [--uploads 200] [--concurrency 20] [--timeout 600] [--poll-max 1.0]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "tests" / "e2e", REPO / "layers" / "core", REPO / "infra" / "local", REPO / "cli"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from PIL import Image  # noqa: E402

from api_client import SETTLED, Api  # noqa: E402


def _e2e_conftest() -> Any:
    """tests/e2e/conftest.py under its own name: `import conftest` could find tests/conftest.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("imgdrop_e2e_conftest", REPO / "tests" / "e2e" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@dataclass
class Outcome:
    index: int
    image_id: str | None = None
    status: str | None = None
    seconds_to_ready: float | None = None
    seconds_to_presign: float | None = None  # the POST /uploads answer
    seconds_to_sent: float | None = None  # the bytes in S3
    error: str | None = None

    @property
    def seconds_sent_to_ready(self) -> float | None:
        if self.seconds_to_ready is None or self.seconds_to_sent is None:
            return None
        return self.seconds_to_ready - self.seconds_to_sent


@dataclass
class Report:
    uploads: int
    concurrency: int
    wall_seconds: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ready(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "ready"]

    @property
    def problems(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != "ready"]

    def percentile(self, p: float, phase: str = "seconds_to_ready") -> float:
        times = sorted(getattr(o, phase) for o in self.ready if getattr(o, phase) is not None)
        if not times:
            return float("nan")
        if len(times) == 1:
            return times[0]
        return statistics.quantiles(times, n=100, method="inclusive")[int(p) - 1]

    @property
    def throughput(self) -> float:
        return len(self.ready) / self.wall_seconds if self.wall_seconds else 0.0

    def summary(self) -> str:
        return (f"{self.uploads} uploads, {self.concurrency} in flight: {len(self.ready)} ready, "
                f"{len(self.problems)} not, in {self.wall_seconds:.1f} s -> {self.throughput:.1f} images/s; "
                f"time to ready p50 {self.percentile(50):.2f} s, p95 {self.percentile(95):.2f} s, "
                f"max {max((o.seconds_to_ready or 0) for o in self.outcomes):.2f} s\n"
                f"  of which presign p50 {self.percentile(50, 'seconds_to_presign'):.2f} s, "
                f"p95 {self.percentile(95, 'seconds_to_presign'):.2f} s; "
                f"from the bytes in S3 to ready p50 {self.percentile(50, 'seconds_sent_to_ready'):.2f} s, "
                f"p95 {self.percentile(95, 'seconds_sent_to_ready'):.2f} s")


def distinct_jpeg(index: int) -> bytes:
    """A different small photo-like JPEG per index, so no upload is an exact or near repeat.

    Smooth colour fields drawn from a 12x9 grid of random colours (seeded by the index): their
    perceptual hashes lie 16 bits apart or more across the run, beyond the widest threshold an
    image may ask for. Images that differ only in colour hash alike (phash reads luminance
    structure): a run of those is a burst of near-duplicates, and measures dedupe's answers."""
    rng = random.Random(index)
    grid = Image.frombytes("RGB", (12, 9), rng.randbytes(12 * 9 * 3))
    image = grid.resize((320 + index % 7 * 16, 240 + index % 5 * 16), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


POLL_FIRST_S = 0.25


def upload_one(api: Api, index: int, deadline: float, poll_max: float = 1.0) -> Outcome:
    outcome = Outcome(index)
    data = distinct_jpeg(index)
    try:
        started = time.monotonic()
        item = {"filename": f"load-{index}.jpg", "content_type": "image/jpeg", "size": len(data),
                "title": f"load {index}"}
        answer = api.presign([item])[0]
        outcome.seconds_to_presign = time.monotonic() - started
        outcome.image_id = answer.get("id")
        if "upload" not in answer:
            outcome.error = f"presign refused: {answer}"
            return outcome
        api.send(answer["upload"], data)
        outcome.seconds_to_sent = time.monotonic() - started
        interval = POLL_FIRST_S
        while True:
            image = api.image(answer["id"])
            if image["status"] in SETTLED:
                outcome.status = image["status"]
                outcome.seconds_to_ready = time.monotonic() - started
                if image["status"] != "ready":
                    outcome.error = str(image.get("errors"))
                return outcome
            if time.monotonic() > deadline:
                outcome.status = image["status"]
                outcome.error = "did not settle before the deadline"
                return outcome
            time.sleep(interval)
            interval = min(interval * 1.5, max(poll_max, POLL_FIRST_S))
    except Exception as exc:  # noqa: BLE001 - one failed upload is reported, not fatal to the run
        outcome.error = f"{type(exc).__name__}: {exc}"
        return outcome


def run_load(stack: Any, uploads: int, concurrency: int, timeout: float, poll_max: float = 1.0) -> Report:
    token = stack.token(tenant=f"load-{os.getpid()}-{time.time_ns()}")
    local = threading.local()

    def api() -> Api:  # one HTTP session per worker thread
        if not hasattr(local, "api"):
            local.api = Api(stack.api_url, token)
        return local.api

    started = time.monotonic()
    deadline = started + timeout
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
        futures = [pool.submit(lambda i=i: upload_one(api(), i, deadline, poll_max)) for i in range(uploads)]
        for future in as_completed(futures):
            outcomes.append(future.result())
    report = Report(uploads, concurrency, time.monotonic() - started, sorted(outcomes, key=lambda o: o.index))
    # None lost: every id is distinct and the tenant's list holds exactly them.
    listed: set[str] = set()
    cursor = None
    client = Api(stack.api_url, token)
    while True:
        page = client.call("GET", "/images", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body: dict[str, Any] = page.json()
        listed.update(item["id"] for item in body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            break
    ids = [o.image_id for o in report.outcomes if o.image_id]
    missing = set(ids) - listed
    for outcome in report.outcomes:
        if outcome.image_id in missing:
            outcome.error = (outcome.error or "") + " missing from GET /images"
            outcome.status = outcome.status or "lost"
    if len(set(ids)) != len(ids):
        raise AssertionError("two uploads were given the same id")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before unsettled uploads count as lost")
    parser.add_argument("--poll-max", type=float, default=1.0,
                        help="longest wait between two GETs of an image (0.25 for a flat 0.25 s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="imgdrop-load-") as tmp:
        stack = _e2e_conftest().launch_stack(Path(tmp))
        try:
            report = run_load(stack, args.uploads, args.concurrency, args.timeout, args.poll_max)
        finally:
            code = stack.stop()
            failures = [line for line in stack.logs().splitlines() if " failed in " in line or "Error" in line]
        if failures:
            print(f"{len(failures)} function errors in the stack's log, the first ones:")
            print("\n".join(f"  {line[:400]}" for line in failures[:10]))
        print(report.summary())
        for outcome in report.problems[:20]:
            print(f"  #{outcome.index} {outcome.image_id}: {outcome.status} {outcome.error}")
        if code != 0:
            print(f"the local stack exited with {code}")
            return 1
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
