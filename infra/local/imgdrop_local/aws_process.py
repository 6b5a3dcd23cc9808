"""The local stack's AWS side in a process of its own: moto's server (behind the S3 guard, with
atomic conditional writes, S3's one multipart notification and IAM's completions) and the local
CDN, whose origin reads moto's S3 backend in this process.

Why a second process: moto answers every AWS call in Python. Sharing one interpreter, and so one
GIL, with the functions, the HTTP API and the dispatcher, it held the whole stack to one core
(`bench/bench_load.py`: the stack's process at 100 % of a core, moto's part about half of it).

`server.run` starts it (`AwsProcess.start`) and talks to it over its stdin and stdout, one JSON
object per line. It answers `{"ready": {...}}` once both servers listen, then one answer per
command:

- `admin_key`: the administrator (created over HTTP) gets the dummy key `testing`, which moto's
  API cannot mint (`iam.give_admin_the_dummy_key`);
- `enforce`: moto enforces IAM from now on (`iam.enforce_in_moto`);
- `stop`, or the end of stdin however the parent ended: stop both servers and exit.

    python -m imgdrop_local.aws_process AWS_PORT CDN_PORT
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess  # nosec B404 - runs this interpreter on this package, no shell
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .s3_guard import SecretLookup

log = logging.getLogger("imgdrop_local.aws")

START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 30.0


class AwsProcessError(RuntimeError):
    pass


class AwsProcess:
    """The parent's handle on the AWS side: start it, call its commands, stop it."""

    def __init__(self, process: subprocess.Popen[bytes], ready: dict[str, Any]):
        self.process = process
        self.cdn_url: str = ready["cdn_url"]
        self.edge_down: str | None = ready.get("edge_down")
        self._lock = threading.Lock()

    @classmethod
    def start(cls, aws_port: int, cdn_port: int, *, timeout: float = START_TIMEOUT_S) -> AwsProcess:
        """Start it with this process's environment (its credentials and the template's
        variables), its stderr shared for the logs; answers once both servers listen."""
        process = subprocess.Popen(  # noqa: S603 - this interpreter, this package  # nosec B603
            [sys.executable, "-m", "imgdrop_local.aws_process", str(aws_port), str(cdn_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
            # Ctrl-C reaches the parent only: it stops the functions first, then this process.
            start_new_session=True,
        )
        try:
            ready = _read_message(process, timeout)
        except BaseException:
            _end(process)
            raise
        if "ready" not in ready:
            _end(process)
            raise AwsProcessError(ready.get("error") or f"unexpected first message {ready!r}")
        return cls(process, ready["ready"])

    def call(self, command: str, *, timeout: float = CALL_TIMEOUT_S) -> None:
        with self._lock:
            _send(self.process, {"do": command})
            answer = _read_message(self.process, timeout)
        if not answer.get("ok"):
            raise AwsProcessError(f"{command}: {answer.get('error') or answer!r}")

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = 3.0) -> None:
        with contextlib.suppress(OSError):
            _send(self.process, {"do": "stop"})
        _end(self.process, timeout)


def _send(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    if process.stdin is None:
        raise AwsProcessError("the AWS process has no stdin")
    process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()


def _read_message(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The next line from the child, within `timeout`: a child that hangs or dies fails the caller
    instead of blocking it."""
    if process.stdout is None:
        raise AwsProcessError("the AWS process has no stdout")
    deadline = time.monotonic() + timeout
    fd = process.stdout.fileno()
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AwsProcessError(f"the AWS process did not answer within {timeout:.0f} s")
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            process.wait(5)
            raise AwsProcessError(f"the AWS process exited with {process.returncode}")
        line += chunk
    message: dict[str, Any] = json.loads(line)
    return message


def _end(process: subprocess.Popen[bytes], timeout: float = 3.0) -> None:
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("the AWS process ignored its stop for %.0f s: killing it", timeout)
        process.kill()
        process.wait()


# ---------------------------------------------------------------- the child


class _ExposeHeaders:
    """WSGI middleware: moto answers S3 CORS without the rule's ExposedHeaders (ETag), which
    browsers then refuse to show to the page; add them to every answer that allows an origin."""

    def __init__(self, app: Any, expose: list[str]):
        self.app = app
        self.expose = ", ".join(expose)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not self.expose or "HTTP_ORIGIN" not in environ:
            return self.app(environ, start_response)

        def add(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            names = {k.lower() for k, _ in headers}
            if "access-control-allow-origin" in names and "access-control-expose-headers" not in names:
                headers = [*headers, ("Access-Control-Expose-Headers", self.expose)]
            return start_response(status, headers, exc_info)

        return self.app(environ, add)


def _serialize_table_iterations() -> None:
    """moto's Query and Scan iterate a table's item dicts while the server's other threads write;
    and GetItem of a missing item writes too (a table with a sort key keeps its items in a
    defaultdict, which the lookup fills with an empty partition). Either way a partition added
    meanwhile fails the Query or Scan with `RuntimeError: dictionary changed size during
    iteration` (a 500 the SDK retries). Take the lock that already serializes moto's item
    writes (atomic_writes) around them, as DynamoDB reads never fail so."""
    from .atomic_writes import hold_the_lock

    hold_the_lock(("query", "scan", "get_item"))


def moto_server(port: int, expose_headers: list[str], secret_for: SecretLookup | None = None) -> Any:
    """moto's ThreadedMotoServer on 127.0.0.1, its WSGI app wrapped in PresignedRequestGuard (S3's
    refusals of presigned requests, checked with `secret_for`, by default the process's own and
    moto-issued credentials) and _ExposeHeaders."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from . import moto_fast
    from .atomic_writes import make_conditional_writes_atomic
    from .dispatcher import notify_multipart_uploads_as_s3
    from .s3_guard import PresignedRequestGuard, local_secret_for, moto_cors_rules
    from .template import REGION

    make_conditional_writes_atomic()
    _serialize_table_iterations()
    moto_fast.apply()
    notify_multipart_uploads_as_s3()  # one ObjectCreated:CompleteMultipartUpload, as S3 sends
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            guard = PresignedRequestGuard(DomainDispatcherApplication(create_backend_app),
                                          secret_for or local_secret_for, region=REGION,
                                          cors_rules=moto_cors_rules)
            app = _ExposeHeaders(guard, expose_headers)
            self._server = make_server(self._ip_address, self._port, app, True,
                                       request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address="127.0.0.1", port=port, verbose=False)


def _serve(aws_port: int, cdn_port: int, channel: IO[str]) -> int:
    from . import cdn, iam
    from .server import PortInUse, _check_port
    from .template import load

    def answer(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    stack = load()
    rules = (stack.bucket_properties.get("CorsConfiguration") or {}).get("CorsRules") or []
    try:
        _check_port(aws_port)  # moto's server thread would fail to bind without telling start()
    except PortInUse as exc:
        answer({"error": str(exc)})
        return 1
    moto = moto_server(aws_port, sorted({h for rule in rules for h in rule.get("ExposedHeaders", [])}))
    moto.start()
    stoppers: list[Any] = [moto.stop]
    try:
        try:
            local_cdn = cdn.start(stack, cdn_port)
        except OSError as exc:
            answer({"error": f"127.0.0.1:{cdn_port}: {exc}"})
            return 1
        stoppers.insert(0, local_cdn.stop)
        answer({"ready": {"cdn_url": local_cdn.url, "edge_down": local_cdn.cdn.edge.unavailable_reason}})
        commands = {"admin_key": iam.give_admin_the_dummy_key, "enforce": iam.enforce_in_moto}
        for line in sys.stdin:
            command = json.loads(line).get("do")
            if command == "stop":
                break
            try:
                commands[command]()
            except Exception as exc:  # noqa: BLE001 - answered to the parent, which fails its start
                log.exception("%s failed", command)
                answer({"error": f"{type(exc).__name__}: {exc}"})
            else:
                answer({"ok": True})
    finally:
        for stopper in stoppers:
            try:
                stopper()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("while stopping")
    return 0


def main(argv: list[str] | None = None) -> int:
    import faulthandler

    from .server import setup_logging

    args = argv if argv is not None else sys.argv[1:]
    setup_logging()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent forwards its own
    # stdout is the parent's channel: nothing else may write to it.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return _serve(int(args[0]), int(args[1]), channel)


if __name__ == "__main__":
    sys.exit(main())
