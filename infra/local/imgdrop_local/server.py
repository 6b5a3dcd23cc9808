"""`python -m imgdrop_local`: the resources of template.yaml, the HTTP API emulation, the functions
and the dispatcher in one foreground process, moto's server and the CDN in a second one that it
starts (aws_process); both stop cleanly on Ctrl-C or SIGTERM.

stdout carries only the banner (URLs, the dev token, then `imgdrop local stack ready`);
logs, including the functions' own, go to stderr.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any, TextIO

from .aws_process import AwsProcess, AwsProcessError
from .template import DEV_JWT_SECRET, REGION, REPO_ROOT, cors_origins, create_resources, load

log = logging.getLogger("imgdrop_local")

READY_LINE = "imgdrop local stack ready"
DEV_SCOPE = "images:read images:write tags:write"


class PortInUse(RuntimeError):
    pass


def _check_port(port: int, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"{host}:{port} is in use ({exc.strerror})") from exc


def setup_logging() -> None:
    level = os.environ.get("IMGDROP_LOCAL_LOG_LEVEL", "INFO").upper()
    formatter = logging.Formatter("%(asctime)s %(name)-22s %(message)s", "%H:%M:%S")
    root = logging.getLogger()
    root.handlers[:] = [logging.StreamHandler(sys.stderr)]
    root.handlers[0].setFormatter(formatter)
    root.setLevel(level)
    # A handler of our own: powertools' Logger filters records of any logger whose name
    # contains its service name ("imgdrop") out of the root handlers.
    own = logging.getLogger("imgdrop_local")
    own.handlers[:] = [logging.StreamHandler(sys.stderr)]
    own.handlers[0].setFormatter(formatter)
    own.propagate = False
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "moto", "s3transfer", "pynamodb", "pyvips"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _cdn_port() -> int:
    """IMGDROP_CDN_PORT, checked like the other ports; unset, 3001, or when 3001 is taken (another
    stack, a test session's) a free port, said in the log and the banner."""
    explicit = os.environ.get("IMGDROP_CDN_PORT")
    if explicit:
        _check_port(int(explicit))
        return int(explicit)
    try:
        _check_port(3001)
        return 3001
    except PortInUse as exc:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        log.warning("%s: the local CDN listens on %s instead (set IMGDROP_CDN_PORT)", exc, port)
        return port


def dev_token(secret: str) -> str | None:
    try:
        from imgdrop_local.tokens import issue_token
    except ImportError as exc:
        log.warning("no dev token: %s", exc)
        return None
    return issue_token(secret, tenant="dev", scope=DEV_SCOPE, sub="dev", ttl=86400)


def run(stop: threading.Event, banner: TextIO | None = None) -> int:
    """Start everything, print the banner, wait for `stop`, then stop everything."""
    import boto3

    from . import iam
    from .dispatcher import Dispatcher
    from .http_api import HttpApi, serve
    from .lambda_runtime import LambdaRuntime, apply_environment

    banner = banner or sys.stdout
    api_port = int(os.environ.get("IMGDROP_API_PORT") or 3000)
    aws_port = int(os.environ.get("IMGDROP_AWS_PORT") or 4566)
    aws_url = f"http://127.0.0.1:{aws_port}"
    api_url = f"http://127.0.0.1:{api_port}"
    _check_port(aws_port)
    _check_port(api_port)
    cdn_port = _cdn_port()
    os.environ["IMGDROP_CDN_PORT"] = str(cdn_port)  # template.load() resolves CDN_BASE_URL with it

    stack = load()
    secret = os.environ.get("JWT_SECRET") or DEV_JWT_SECRET
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(var, None)
    local_env = {
        "AWS_ENDPOINT_URL": aws_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's dummy credentials  # nosec B105
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "PUBLIC_S3_ENDPOINT_URL": aws_url,
        "JWT_SECRET": secret,
        "API_BASE_URL": api_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        # Webhooks may call receivers on this machine (http://127.0.0.1:PORT/...): local only.
        "IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP": "true",
    }
    apply_environment(stack, local_env)

    # moto and the CDN run in a process of their own (aws_process: why), started with the
    # environment above; it ends when this process does, however that happens.
    aws = AwsProcess.start(aws_port, cdn_port)
    stoppers: list[Any] = [aws.stop]
    _AWS[0] = aws
    exit_code = 0
    try:
        session = boto3.session.Session(region_name=REGION)
        create_resources(session, stack, jwt_secret=secret)
        # IAM as deployed: each function calls with its role's credentials, moto enforces the
        # role's policies; the dummy credentials (testing) are the administrator's.
        identities = iam.setup(session, stack, give_admin_key=lambda: aws.call("admin_key"))
        iam.enable(identities, enforce=lambda: aws.call("enforce"))
        stoppers.insert(0, iam.disable)
        session = boto3.session.Session(region_name=REGION)  # resolves who calls, on every call
        log.info("moto on %s: table %s, bucket %s; IAM enforced, one role per function",
                 aws_url, stack.table_name, stack.bucket_name)

        delays = tuple(float(d) for d in os.environ.get("IMGDROP_RETRY_DELAYS", "0.2,0.5").split(",") if d)
        workers = int(os.environ.get("IMGDROP_WORKERS") or 4)
        api_copies = int(os.environ.get("IMGDROP_API_COPIES") or 1)
        runtime = LambdaRuntime(stack, retry_delays=delays, workers=workers, api_copies=api_copies,
                                sqs_client=session.client("sqs"))
        stoppers.insert(0, lambda: runtime.shutdown(timeout=5))
        failed = runtime.preload()

        api = HttpApi(runtime, stack.routes, stack.cors, cors_origins=cors_origins(stack))
        server = serve(api, "127.0.0.1", api_port)
        api_thread = threading.Thread(target=server.serve_forever, name="http-api", daemon=True)
        api_thread.start()

        def stop_api() -> None:
            server.shutdown()
            server.server_close()
            api_thread.join(5)

        stoppers.insert(0, stop_api)

        dispatcher = Dispatcher(stack, runtime, session.client("s3"), session.client("sqs"))
        dispatcher.start()
        stoppers.insert(0, dispatcher.stop)

        from . import cdn


        token = dev_token(secret)
        lines = [
            "",
            f"  API            {api_url}/v1   (docs: {api_url}/v1/docs)",
            f"  uploader page  {api_url}/",
            f"  AWS endpoint   {aws_url}   (moto, {REGION}, in process {aws.process.pid}; dummy credentials",
            "                 testing are admin, each function calls as its role: IAM enforced)",
            f"  table {stack.table_name}, bucket {stack.bucket_name}",
            f"  CDN            {aws.cdn_url}   (template.yaml's distribution: public/ unsigned, the rest",
            f"                 signed by key pair {cdn.LOCAL_CDN_KEY_PAIR_ID}, dev key in {cdn.state_dir()})",
        ]
        if aws.edge_down:
            lines.append(f"  edge function  not running: {aws.edge_down}; the CDN answers 502")
        if failed:
            lines.append(f"  not loaded     {', '.join(failed)} (see the log above)")
        if token:
            lines += [
                "  dev token      tenant dev, scope \"" + DEV_SCOPE + "\", valid 24 h:",
                "",
                f"export IMGDROP_API={api_url} IMGDROP_TOKEN={token}",
                "",
            ]
        lines.append(READY_LINE)
        print("\n".join(lines), file=banner, flush=True)

        while not stop.wait(0.5):
            if aws.process.poll() is not None:  # every AWS call would fail from now on
                log.error("the AWS process (moto, the CDN) exited with %s: stopping the stack",
                          aws.process.returncode)
                exit_code = 1
                break
        log.info("stopping")
    finally:
        _STOPPING[0] = "the stoppers"
        for stopper in stoppers:
            _STOPPING[0] = getattr(stopper, "__qualname__", repr(stopper))
            try:
                stopper()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("while stopping")
        _STOPPING[0] = "the interpreter's exit"
        _AWS[0] = None
    return exit_code


# The running stack's AWS process, for main()'s SIGUSR1 forwarding.
_AWS: list[Any] = [None]


# Ctrl-C or SIGTERM stops the stack within this many seconds (8 at worst), whatever is still at work.
STOP_DEADLINE_S = 6.0
_STOPPING = ["the run loop"]  # what the stop is at, for the watchdog's message


def _arm_stop_watchdog(deadline_s: float) -> None:
    """Past the deadline after the signal (a poller stuck on a slow moto call, a request or an
    invocation still at work, a thread the interpreter's exit joins), end the process as Lambda
    ends an environment, saying where the stop was. The message goes straight to fd 2, not
    through logging, whose locks a stuck thread may hold; and should even this thread never run
    (the GIL held), faulthandler's own C thread dumps every thread's stack and exits (code 1)."""

    def overdue() -> None:
        os.write(2, f"imgdrop_local: still stopping after {deadline_s:.0f} s (at {_STOPPING[0]}): "
                    "exiting now\n".encode())
        os._exit(0)

    watchdog = threading.Timer(deadline_s, overdue)
    watchdog.daemon = True
    watchdog.start()
    faulthandler.dump_traceback_later(deadline_s + 2, exit=True)


def main() -> int:
    setup_logging()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s received", signal.Signals(signum).name)
        if not stop.is_set():
            _arm_stop_watchdog(STOP_DEADLINE_S)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # `kill -USR1 <pid>` prints every thread's stack to stderr, this process's and then its AWS
    # process's, and the stack goes on: what a stack that stopped answering is waiting for (the
    # e2e tests send it before a test times out).
    def forward_to_aws(signum: int, _frame: Any) -> None:
        if _AWS[0] is not None:
            _AWS[0].signal(signum)

    signal.signal(signal.SIGUSR1, forward_to_aws)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=True)
    os.chdir(REPO_ROOT)
    # The functions' loggers (powertools) write to sys.stdout; keep stdout for the banner.
    banner = sys.stdout
    sys.stdout = sys.stderr
    try:
        return run(stop, banner)
    except PortInUse as exc:
        log.error("%s: set IMGDROP_API_PORT / IMGDROP_AWS_PORT / IMGDROP_CDN_PORT", exc)
        return 1
    except AwsProcessError as exc:  # a port taken meanwhile, or moto or the CDN failed to start
        log.error("the AWS process did not start: %s", exc)
        return 1
    finally:
        sys.stdout = banner
