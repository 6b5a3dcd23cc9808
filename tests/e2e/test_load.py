"""A bounded load run on the local stack: 40 uploads, 10 in flight, all settle, none lost.

The full run is `make bench` (bench/bench_load.py: 200 uploads, 20 in flight)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_load import run_load  # noqa: E402


def test_forty_uploads_ten_in_flight_all_settle_none_lost(local_stack):
    report = run_load(local_stack, uploads=40, concurrency=10, timeout=240)
    print(report.summary())
    assert not report.problems, [(o.index, o.image_id, o.status, o.error) for o in report.problems]
    assert len(report.ready) == 40
    assert len({o.image_id for o in report.ready}) == 40
    assert report.wall_seconds < 240
