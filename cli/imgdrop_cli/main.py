"""`imgdrop`: token, upload, get.

imgdrop token --tenant acme --scope "images:read images:write"
imgdrop upload photos/ --album 01J… --tag t1 --wait
imgdrop upload scan.tif --parallel 8        (over 100 MiB: S3 multipart, parts in parallel)
imgdrop upload scan.tif --resume            (continues an interrupted multipart upload)
imgdrop get 01J… [--urls]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from rich.console import Console
from rich.table import Table

from imgdrop.auth import DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
from imgdrop_cli.api import DEFAULT_API, Api, ApiError, make_session
from imgdrop_cli.files import describe, expand_paths
from imgdrop_cli.resumable import MIN_PART_BYTES, ResumeStore, RunControl, default_state_path
from imgdrop_cli.upload import Bars, UploadOptions, is_failure, is_interrupted, upload_files
from imgdrop_local.tokens import LOCAL_DEV_SECRET, issue_token

DEV_TENANT = "dev"
DEV_SCOPE = "images:read images:write tags:write"
ALBUM_RIGHTS = ("upload", "read")
PURPOSES = ("product", "account", "user", "category")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    pass


# ---------------------------------------------------------------- parsing


def _album_arg(value: str) -> tuple[str, list[str]]:
    album_id, _, rights = value.partition(":")
    if not album_id:
        raise argparse.ArgumentTypeError(f"expected ID[:upload,read], got {value!r}")
    listed = [r.strip() for r in rights.split(",") if r.strip()] if rights else list(ALBUM_RIGHTS)
    unknown = [r for r in listed if r not in ALBUM_RIGHTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown album right(s) {', '.join(unknown)}; use upload, read")
    return album_id, listed


def _claim_arg(value: str) -> tuple[str, Any]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {value!r}")
    try:
        parsed: Any = json.loads(raw)  # numbers, booleans, lists and objects as JSON
    except ValueError:
        parsed = raw
    return key, parsed


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _part_size_arg(value: str) -> int:
    """`--part-size` in MiB (a number, optionally followed by MiB/M): at least 5 MiB."""
    number = value.strip().lower().removesuffix("mib").removesuffix("m").strip()
    try:
        size = int(float(number) * 1024 * 1024)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in MiB, got {value!r}") from None
    if size < MIN_PART_BYTES:
        raise argparse.ArgumentTypeError("S3 parts are at least 5 MiB")
    return size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgdrop", description="imgdrop's command-line client.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tok = sub.add_parser("token", help="print a bearer token (HS256) for the local stack or a dev secret")
    tok.add_argument(
        "--tenant",
        default=DEV_TENANT,
        help="tenant claim, 1..64 characters of [A-Za-z0-9_-]; '' omits it (default: dev)",
    )
    tok.add_argument(
        "--scope",
        default="images:read images:write",
        help='space separated scopes (default: "images:read images:write")',
    )
    tok.add_argument("--sub", default="dev", help="subject claim (default: dev)")
    tok.add_argument(
        "--album",
        action="append",
        type=_album_arg,
        default=[],
        metavar="ID[:upload,read]",
        help="restrict the token to this album with these rights (repeatable)",
    )
    tok.add_argument(
        "--ttl",
        type=int,
        default=3600,
        help=f"seconds until expiry, at most {DEFAULT_MAX_TOKEN_LIFETIME_SECONDS}; negative: already expired",
    )
    tok.add_argument(
        "--claim",
        action="append",
        type=_claim_arg,
        default=[],
        metavar="KEY=VALUE",
        help="extra or overriding claim; VALUE is parsed as JSON when it can be (repeatable)",
    )
    tok.add_argument(
        "--secret",
        default=None,
        help=f"HS256 secret (default: $JWT_SECRET, else the local stack's {LOCAL_DEV_SECRET!r})",
    )

    def api_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--api", default=None, help=f"API base URL (default: $IMGDROP_API, else {DEFAULT_API})"
        )
        p.add_argument(
            "--token",
            default=None,
            help="bearer token (default: $IMGDROP_TOKEN; against the local default API a dev "
            "token is minted)",
        )

    up = sub.add_parser(
        "upload",
        help="upload files and folders: presigned POSTs, S3 multipart above 100 MiB",
        description="Upload files and folders. A file up to 100 MiB goes as one presigned POST; a "
        "larger one as an S3 multipart upload (parts in parallel, each retried 3 times), which "
        f"Ctrl-C leaves resumable: --resume continues it (state in {default_state_path()}).",
    )
    up.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders walked for images")
    up.add_argument("--album", dest="album_id", default=None, metavar="ID")
    up.add_argument(
        "--tag", dest="tags", action="append", default=[], metavar="ID", help="tag id (repeatable)"
    )
    up.add_argument("--profile", default=None, metavar="NAME", help="variant profile (default, flickr, …)")
    up.add_argument(
        "--purpose", default=None, choices=PURPOSES, help="picks a profile when --profile is absent"
    )
    up.add_argument("--wait", action="store_true", help="wait until each image is processed")
    up.add_argument("--wait-timeout", type=float, default=300.0, metavar="SECONDS")
    up.add_argument("--json", action="store_true", help="print the image objects as a JSON list, no bars")
    up.add_argument("--concurrency", type=_positive_int, default=4, metavar="N", help="parallel uploads (4)")
    up.add_argument(
        "--parallel", type=_positive_int, default=4, metavar="N",
        help="parallel parts of a multipart upload (4)",
    )
    up.add_argument(
        "--multipart", action="store_true", help="use S3 multipart whatever the size (default: above 100 MiB)"
    )
    up.add_argument(
        "--part-size", type=_part_size_arg, default=None, metavar="MiB",
        help="multipart part size in MiB, at least 5 (default: the API's advice)",
    )
    up.add_argument(
        "--resume", action="store_true",
        help="continue the interrupted multipart uploads of these files, sending only the missing parts",
    )
    api_args(up)

    get = sub.add_parser("get", help="print an image object (JSON), or its delivery URLs")
    get.add_argument("image_id", metavar="ID")
    get.add_argument(
        "--urls",
        action="store_true",
        help="print the delivery URLs readably instead: per variant its size and each format's URL, "
        "the auto-format URL, and the original's signed URL",
    )
    api_args(get)
    return parser


# ---------------------------------------------------------------- helpers


def resolve_secret(explicit: str | None) -> str:
    return explicit or os.environ.get("JWT_SECRET") or LOCAL_DEV_SECRET


def mint(args: argparse.Namespace) -> str:
    albums: dict[str, list[str]] | None = None
    if args.album:
        albums = {}
        for album_id, rights in args.album:
            listed = albums.setdefault(album_id, [])
            listed += [r for r in rights if r not in listed]
    try:
        return issue_token(
            resolve_secret(args.secret),
            tenant=args.tenant if args.tenant != "" else None,
            scope=args.scope,
            sub=args.sub,
            albums=albums,
            ttl=args.ttl,
            claims=dict(args.claim) or None,
        )
    except ValueError as exc:  # a tenant or a lifetime that imgdrop's verifier would refuse
        raise UsageError(f"will not mint this token: {exc}") from exc


def is_local_default(api_url: str) -> bool:
    parts = urlsplit(api_url)
    return parts.hostname in ("127.0.0.1", "localhost") and (parts.port or 80) == urlsplit(DEFAULT_API).port


def resolve_api_and_token(args: argparse.Namespace) -> tuple[str, str]:
    api_url = (
        args.api or os.environ.get("IMGDROP_API") or DEFAULT_API
    ).rstrip("/")
    token = args.token or os.environ.get("IMGDROP_TOKEN")
    if not token:
        if not is_local_default(api_url):
            raise UsageError(f"no token for {api_url}: pass --token or set IMGDROP_TOKEN")
        token = issue_token(resolve_secret(None), tenant=DEV_TENANT, scope=DEV_SCOPE, sub="dev")
    return api_url, token


def _error_line(error: dict[str, Any]) -> str:
    pointer = (error.get("source") or {}).get("pointer")
    where = f" ({pointer})" if pointer else ""
    return f"{error.get('code', 'error')}: {error.get('title', '')}{where}"


def _notes(outcome: dict[str, Any]) -> list[str]:
    """What a reader should know about one outcome: duplicate, errors, tag errors (each once)."""
    notes: list[str] = []
    if outcome.get("duplicate_of"):
        notes.append(f"duplicate of {outcome['duplicate_of']}")
    errors = []
    if isinstance(outcome.get("error"), dict) and outcome.get("status") != "duplicate":
        errors.append(outcome["error"])
    errors += [e for e in outcome.get("errors") or [] if isinstance(e, dict)]
    for error in errors:
        line = _error_line(error)
        if line not in notes:
            notes.append(line)
    for tag in outcome.get("tags") or []:
        if isinstance(tag, dict) and tag.get("error"):
            notes.append(f"tag {tag.get('id')}: {tag['error']}")
    transfer = outcome.get("transfer")
    if isinstance(transfer, dict) and transfer.get("reused"):
        reused, parts = len(transfer["reused"]), transfer.get("parts")
        notes.append(f"resumed: {reused} of {parts} parts were stored already")
    return notes


def _summary_table(outcomes: list[dict[str, Any]]) -> Table:
    table = Table(show_header=True, header_style="bold")
    table.add_column("file", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("size", no_wrap=True)
    table.add_column("note", overflow="fold", ratio=1)
    colors = {"ready": "green", "duplicate": "yellow", "failed": "red", "expired": "red", "error": "red"}
    for o in outcomes:
        status = str(o.get("status") or "error")
        size = f"{o['width']}×{o['height']}" if o.get("width") and o.get("height") else ""
        table.add_row(
            os.path.basename(str(o.get("path", ""))),
            str(o.get("id") or ""),
            f"[{colors.get(status, 'cyan')}]{status}",
            size,
            "; ".join(_notes(o)),
        )
    return table


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return ""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def _dims(entry: dict[str, Any]) -> str:
    return f"{entry['width']}×{entry['height']}" if entry.get("width") and entry.get("height") else "?"


def _signed_until(url: str) -> str | None:
    """When a CloudFront-signed URL stops working (its Expires), as UTC text; None if unsigned."""
    query = parse_qs(urlsplit(url).query)
    if "Signature" not in query:
        return None
    expires = (query.get("Expires") or [""])[0]
    if not expires.isdigit():
        return "signed"
    return "signed, valid until " + datetime.fromtimestamp(int(expires), UTC).strftime("%Y-%m-%d %H:%M UTC")


def delivery_lines(image: dict[str, Any]) -> list[str]:
    """`imgdrop get --urls`: the image's delivery URLs, one per line, in aligned columns (variant,
    size, format, bytes, URL); the fallback format is starred; signed URLs say until when."""
    head = [str(image.get("id")), str(image.get("status")), str(image.get("privacy") or "public")]
    if image.get("width") and image.get("height"):
        head.append(_dims(image) + (f" {image['format']}" if image.get("format") else ""))
    lines = [" · ".join(head)]
    variants = image.get("variants") or {}
    original = image.get("original")
    if not variants and not original:
        lines.append(f"no delivery URLs (status {image.get('status')}: they come once the image is ready)")
        return lines
    rows: list[tuple[str, str, str, str, str]] = []
    variant_urls: list[str] = []
    for name, variant in variants.items():
        fallback = variant.get("format")
        formats = variant.get("formats") or {fallback or "?": variant}
        for i, (fmt, spec) in enumerate(formats.items()):
            star = "*" if fmt == fallback and len(formats) > 1 else ""
            rows.append((name if i == 0 else "", _dims(variant) if i == 0 else "", f"{fmt}{star}",
                         _size(spec.get("bytes")), str(spec.get("url"))))
            variant_urls.append(str(spec.get("url")))
        if variant.get("auto_url"):
            rows.append(("", "", "auto", "", str(variant["auto_url"])))
            variant_urls.append(str(variant["auto_url"]))
    if original:
        rows.append(("original", _dims(original), str(original.get("format") or ""),
                     _size(original.get("bytes")), str(original.get("url"))))
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    for name, dims, fmt, size, url in rows:
        cells = [name.ljust(width[0]), dims.ljust(width[1]), fmt.ljust(width[2]), size.rjust(width[3]), url]
        lines.append("  ".join(cells))
    if any(row[2].endswith("*") for row in rows):
        lines.append("* the fallback format (the variant's url); auto: the best format the Accept allows")
    if variant_urls:
        signed = {_signed_until(u) or "unsigned" for u in variant_urls}
        lines.append("variant URLs: " + (signed.pop() if len(signed) == 1 else "partly signed"))
    if original and original.get("url"):
        lines.append("original URL: " + (_signed_until(str(original["url"])) or "unsigned"))
    return lines


# ---------------------------------------------------------------- commands


def cmd_token(args: argparse.Namespace, out: Console, err: Console, session: Any) -> int:
    print(mint(args), file=out.file)
    return EXIT_OK


def cmd_get(args: argparse.Namespace, out: Console, err: Console, session: Any) -> int:
    api_url, token = resolve_api_and_token(args)
    api = Api(api_url, token, session=session)
    image = api.get_image(args.image_id)
    if args.urls:
        print("\n".join(delivery_lines(image)), file=out.file)
    else:
        print(json.dumps(image, indent=2, ensure_ascii=False), file=out.file)
    return EXIT_FAILED if image.get("status") in ("failed", "expired") else EXIT_OK


def cmd_upload(args: argparse.Namespace, out: Console, err: Console, session: Any) -> int:
    api_url, token = resolve_api_and_token(args)
    try:
        paths = expand_paths(args.paths)
    except FileNotFoundError as exc:
        raise UsageError(f"no such file or folder: {exc}") from exc
    if not paths:
        raise UsageError("no image files found in " + ", ".join(args.paths))
    files = [describe(p) for p in paths]
    store = ResumeStore()
    if not args.resume:
        waiting = [f for f in files if store.get(f) is not None]
        if waiting:
            err.print(
                f"[yellow]imgdrop: {len(waiting)} of these files have an interrupted upload; "
                "--resume continues it instead of starting over.",
                highlight=False,
            )
    options = UploadOptions(
        album_id=args.album_id,
        tags=args.tags,
        profile=args.profile,
        purpose=args.purpose,
        wait=args.wait,
        wait_timeout=args.wait_timeout,
        concurrency=args.concurrency,
        parallel=args.parallel,
        multipart=args.multipart,
        part_size=args.part_size,
        resume=args.resume,
        store=store,
        control=RunControl.from_env(),
    )
    pool = args.concurrency * args.parallel + 2
    api = Api(api_url, token, session=session if session is not None else make_session(pool))
    with Bars(enabled=not args.json and err.is_terminal, console=err) as bars:
        outcomes = upload_files(api, files, options, bars=bars)
    if args.json:
        print(json.dumps(outcomes, indent=2, ensure_ascii=False), file=out.file)
    else:
        out.print(_summary_table(outcomes))
    if any(is_interrupted(o) for o in outcomes):
        err.print(
            "[yellow]imgdrop: interrupted; run the same command with --resume to continue.", highlight=False
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(is_failure(o) for o in outcomes) else EXIT_OK


COMMANDS = {"token": cmd_token, "upload": cmd_upload, "get": cmd_get}


def main(
    argv: Sequence[str] | None = None, *, session: Any = None, stdout: Any = None, stderr: Any = None
) -> int:
    """The console script. `session` (a requests.Session look-alike) lets tests fake HTTP."""
    args = build_parser().parse_args(argv)
    out = Console(file=stdout or sys.stdout, soft_wrap=True)
    err = Console(file=stderr or sys.stderr, stderr=True)
    try:
        return COMMANDS[args.command](args, out, err, session)
    except UsageError as exc:
        err.print(f"[red]imgdrop: {exc}", highlight=False)
        return EXIT_USAGE
    except ApiError as exc:
        for error in exc.errors:
            err.print(f"[red]imgdrop: HTTP {exc.status} {_error_line(error)}", highlight=False)
        return EXIT_FAILED
    except requests.ConnectionError as exc:
        err.print(f"[red]imgdrop: cannot reach the API: {exc}", highlight=False)
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("[yellow]imgdrop: interrupted.", highlight=False)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
