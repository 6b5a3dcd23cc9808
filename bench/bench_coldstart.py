"""Cold import of each handler against its baseline, measured in the same run.

The baseline is what any such function pays whatever it does: a bare boto3 client and a
powertools resolver (for the process and reprocess functions, plus `PIL.Image` and `pyvips`).
The target (issue #15) is each handler's import at most 1.3x its baseline. Each figure is the
median CPU time (user + system) of several fresh interpreters: CPU time, not wall time, so that
other work on the machine weighs less. Nothing touches the network (clients are built, never
called).

The interpreters get the environment Lambda gives a function (LAMBDA_TASK_ROOT,
AWS_LAMBDA_FUNCTION_NAME, AWS_EXECUTION_ENV) with tracing on, as deployed: outside Lambda the
X-Ray SDK builds a sampling client at import (two botocore clients, ~150 ms) that it never builds
in Lambda, and a bench without these variables weighed that instead.

Run: ``.venv/bin/python bench/bench_coldstart.py [--runs 9] [--top 12] [--only api process]``
``--top N`` also prints the N slowest modules of each handler (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "layers" / "core"

BASE = (
    "import boto3; boto3.client('s3');"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver; APIGatewayHttpResolver()"
)
IMAGING = BASE + "; import PIL.Image; import pyvips"

HANDLERS = {
    "api": ("functions/api", BASE),
    "authorizer": ("functions/authorizer", BASE),
    "process": ("functions/process", IMAGING),
    "finalize": ("functions/finalize", BASE),
    "sweep": ("functions/sweep", BASE),
    "webhooks": ("functions/webhooks", BASE),
    "reprocess": ("functions/reprocess", IMAGING),
}


def environment(cwd: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(CORE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    for key, value in {
        "LAMBDA_TASK_ROOT": str(cwd),
        "AWS_LAMBDA_FUNCTION_NAME": f"bench-{cwd.name}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "bench",
        "BUCKET_NAME": "bench",
        "POWERTOOLS_SERVICE_NAME": "imgdrop",
        "POWERTOOLS_METRICS_NAMESPACE": "imgdrop",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "JWT_SECRET": "bench-secret-of-at-least-32-bytes-long",
    }.items():
        env.setdefault(key, value)
    return env


def cpu_seconds(statement: str, cwd: Path, env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", statement], check=True, env=env, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def import_ms(baseline: str, cwd: Path, runs: int) -> tuple[float, float]:
    """Median CPU ms of the baseline and of `import app`, measured alternately, so that a change
    in the machine's load during the run weighs on both alike."""
    env = environment(cwd)
    base, handler = [], []
    for _ in range(runs):
        base.append(cpu_seconds(baseline, cwd, env))
        handler.append(cpu_seconds("import app", cwd, env))
    return statistics.median(base) * 1000, statistics.median(handler) * 1000


def slowest_modules(cwd: Path, top: int) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        env=environment(cwd), cwd=cwd, capture_output=True, text=True, check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            rows.append((int(match.group(2)), match.group(3).count(" ") // 2, match.group(4)))
    rows.sort(reverse=True)
    return [(cumulative, f"{'  ' * min(depth, 6)}{name}") for cumulative, depth, name in rows[:top]]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=sorted(HANDLERS), help="these handlers only")
    args = parser.parse_args()
    print(f"cold import, median of {args.runs} fresh interpreters (target: <= 1.3x the baseline)\n")
    print(f"{'handler':<12}{'baseline ms':>12}{'handler ms':>12}{'ratio':>8}   (CPU ms)")
    worst = 0.0
    for name, (folder, baseline) in HANDLERS.items():
        if args.only and name not in args.only:
            continue
        cwd = ROOT / folder
        base, handler = import_ms(baseline, cwd, args.runs)
        worst = max(worst, handler / base)
        print(f"{name:<12}{base:>12.0f}{handler:>12.0f}{handler / base:>7.2f}x")
        if args.top:
            for cumulative, module in slowest_modules(cwd, args.top):
                print(f"{'':<14}{cumulative / 1000:>8.1f} ms  {module}")
    print(f"\nworst ratio {worst:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
