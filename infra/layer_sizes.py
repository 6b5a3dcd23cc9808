"""Print the unzipped size of every layer `sam build` produced; exit 1 above the limit.

    python infra/layer_sizes.py [--build-dir .aws-sam/build] [--limit-mb 200]

Lambda allows 250 MB unzipped for a function and all its layers together; imgdrop keeps
each layer under 200 MB so the function code and the core layer fit beside the imaging one.
Exit codes: 0 all layers within the limit, 1 a layer above it, 2 no built layer found.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MB = 1_000_000


def tree_size(root: Path) -> int:
    """Bytes of every regular file under root (what Lambda counts, unzipped)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def layer_sizes(build_dir: Path) -> dict[str, int]:
    return {p.name: tree_size(p) for p in sorted(build_dir.glob("*Layer")) if p.is_dir()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--build-dir", type=Path, default=Path(__file__).resolve().parents[1] / ".aws-sam" / "build"
    )
    parser.add_argument("--limit-mb", type=float, default=200.0)
    args = parser.parse_args(argv)
    sizes = layer_sizes(args.build_dir)
    if not sizes:
        print(f"no built layer under {args.build_dir} (run sam build first)", file=sys.stderr)
        return 2
    limit = args.limit_mb * MB
    width = max(len(name) for name in sizes)
    worst = 0
    for name, size in sizes.items():
        over = size > limit
        worst = max(worst, int(over))
        flag = f"  OVER {args.limit_mb:g} MB" if over else ""
        print(f"{name:<{width}}  {size / MB:8.1f} MB{flag}")
    print(f"{'total':<{width}}  {sum(sizes.values()) / MB:8.1f} MB (limit per layer {args.limit_mb:g} MB)")
    return worst


if __name__ == "__main__":
    sys.exit(main())
