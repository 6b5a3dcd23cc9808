"""Render a 60-frame 1024x1024 GIF many times in parallel processes and count renders that hang.

    python bench/stress_animation.py [--renders 40] [--processes 3] [--deadline 40]

Not a timing bench: a check of a deadlock that no test can force. A libvips `arrayjoin` of one
crop per frame (the strip path of animated variants until f5c40e6) left every thread of
libvips' pool waiting on a semaphore in about one render in 30 of this GIF, and hung CI. Each
render runs under faulthandler's watchdog: a render still at work after ``--deadline`` seconds
(it takes ~6 s on one core) prints its Python stack and ends its process with code 1; the
script then reports it and exits 1.

Measured on 2 cores with 3 processes: before the fix, 5 hangs in at most 120 renders; after,
0 in 240.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import faulthandler, sys
sys.path.insert(0, {core!r})
from imgdrop.pipeline import render
data = open({path!r}, "rb").read()
for _ in range({renders}):
    faulthandler.dump_traceback_later({deadline}, exit=True)
    render(data, "default")
    faulthandler.cancel_dump_traceback_later()
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=40, help="renders per process")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=40.0, help="seconds before a render counts as hung")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "unit" / "pipeline"))
    from sample_images import flat_gif

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.gif"
        path.write_bytes(flat_gif(1024, 1024, 60))
        code = WORKER.format(core=str(ROOT / "layers" / "core"), path=str(path), renders=args.renders,
                             deadline=args.deadline)
        workers = [
            subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(args.processes)
        ]
        hung = 0
        for number, worker in enumerate(workers):
            _, err = worker.communicate()
            if worker.returncode != 0:
                hung += 1
                print(f"process {number}: exit {worker.returncode}\n{err[-3000:]}")
    print(f"{args.processes} processes x {args.renders} renders: {hung} process(es) hung or failed")
    return 1 if hung else 0


if __name__ == "__main__":
    sys.exit(main())
