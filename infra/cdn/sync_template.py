"""Copy infra/cdn/auto_format.js into template.yaml's AutoFormatFunction (FunctionCode: |).

CloudFormation takes a CloudFront Function's code only inline, and neither SAM nor `aws
cloudformation package` reads it from a file; the .js file stays the single source of truth and
this script rewrites the inline copy from it.

    python infra/cdn/sync_template.py           # rewrite the copy (a no-op when it is current)
    python infra/cdn/sync_template.py --check   # exit 1 when the copy differs from the file

Only the lines of that one block scalar change; the rest of template.yaml is left byte for byte.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SOURCE = ROOT / "infra" / "cdn" / "auto_format.js"
RESOURCE = "AutoFormatFunction"


def _block(lines: list[str]) -> tuple[int, int, int]:
    """(first line of the block's text, line after its text, its indentation) in the template."""
    start = next((i for i, line in enumerate(lines) if line.rstrip("\n") == f"  {RESOURCE}:"), None)
    if start is None:
        raise SystemExit(f"template.yaml has no resource {RESOURCE}")
    key = None
    for i in range(start + 1, len(lines)):
        text = lines[i].rstrip("\n")
        if text.strip() and not text.startswith("   "):  # the next resource or section
            break
        match = re.fullmatch(r"( +)FunctionCode: \|", text)
        if match:
            key = i, len(match.group(1))
            break
    if key is None:
        raise SystemExit(f"{RESOURCE} has no `FunctionCode: |` block")
    line, key_indent = key
    end = line + 1
    last_text = line  # the block ends at its last non-blank line: trailing blank lines separate
    while end < len(lines):
        text = lines[end].rstrip("\n")
        if text.strip() and len(text) - len(text.lstrip(" ")) <= key_indent:
            break
        if text.strip():
            last_text = end
        end += 1
    return line + 1, last_text + 1, key_indent + 2


def render(source: str, indent: int) -> list[str]:
    if not source.endswith("\n") or source.endswith("\n\n"):
        raise SystemExit(f"{SOURCE.name} must end with exactly one newline (YAML's `|` keeps one)")
    if "\t" in source or source[:1] in (" ", "\n"):
        raise SystemExit(f"{SOURCE.name}: no tabs, and the first line must not be indented or blank")
    pad = " " * indent
    return [(pad + line if line else "") + "\n" for line in source[:-1].split("\n")]


def synced(template: str, source: str) -> str:
    lines = template.splitlines(keepends=True)
    first, after, indent = _block(lines)
    return "".join(lines[:first] + render(source, indent) + lines[after:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the copy is current")
    args = parser.parse_args(argv)
    template = TEMPLATE.read_text(encoding="utf-8")
    wanted = synced(template, SOURCE.read_text(encoding="utf-8"))
    if wanted == template:
        print(f"template.yaml: {RESOURCE} is current")
        return 0
    if args.check:
        print(f"template.yaml: {RESOURCE}'s code differs from infra/cdn/auto_format.js; "
              "run python infra/cdn/sync_template.py", file=sys.stderr)
        return 1
    TEMPLATE.write_text(wanted, encoding="utf-8")
    print(f"template.yaml: {RESOURCE} rewritten from infra/cdn/auto_format.js")
    return 0


if __name__ == "__main__":
    sys.exit(main())
