"""The local stack as a subprocess (`python -m imgdrop_local`) on free ports, once per session."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "imgdrop local stack ready"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
PYTHONPATH = os.pathsep.join(str(REPO / p) for p in ("layers/core", "infra/local", "cli"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStack:
    api_url: str
    aws_url: str
    secret: str
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)
    cdn_url: str = ""  # the local CDN (IMGDROP_CDN_PORT): the image object's delivery URLs point there

    def token(self, *, tenant: str | None = "e2e", scope: str = "images:read images:write tags:write",
              sub: str = "e2e", albums: dict[str, list[str]] | None = None, ttl: int = 3600,
              **claims: Any) -> str:
        from imgdrop_local.tokens import issue_token

        return issue_token(self.secret, tenant=tenant, scope=scope, sub=sub, albums=albums, ttl=ttl,
                           claims=claims or None)

    def headers(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**claims)}"}

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit code; fails the caller if it takes over STOP_TIMEOUT_S."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the local stack ignored SIGTERM for {STOP_TIMEOUT_S} s:\n"
                                 f"{self.logs()[-3000:]}") from None


def launch_stack(workdir: Path, **extra_env: str) -> LocalStack:
    api_port, aws_port, cdn_port = free_port(), free_port(), free_port()
    secret = "e2e-secret-" + os.urandom(16).hex()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [PYTHONPATH, os.environ.get("PYTHONPATH")])),
        "IMGDROP_API_PORT": str(api_port),
        "IMGDROP_AWS_PORT": str(aws_port),
        "IMGDROP_CDN_PORT": str(cdn_port),  # not 3001: a `make dev` or another session may hold it
        "JWT_SECRET": secret,
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    # Files, not pipes: a pipe nobody drains would block the stack once its buffer fills.
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "imgdrop_local"], cwd=REPO, env=env,
                                   stdout=out, stderr=err)
    stack = LocalStack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", secret, process,
                       stdout_path, stderr_path, env)
    _LAUNCHED.append(stack)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        banner = stdout_path.read_text(errors="replace")
        if READY_LINE in banner:
            cdn = re.search(r"^\s+CDN\s+(http://\S+)", banner, re.M)  # the port it really took
            stack.cdn_url = cdn.group(1) if cdn else f"http://127.0.0.1:{env.get('IMGDROP_CDN_PORT') or 3001}"
            return stack
        if process.poll() is not None:
            raise AssertionError(f"the local stack exited with {process.returncode}:\n{stack.logs()[-4000:]}")
        time.sleep(0.1)
    stack.stop()
    raise AssertionError(f"no '{READY_LINE}' within {START_TIMEOUT_S} s:\n{stack.logs()[-4000:]}")


_LAUNCHED: list[LocalStack] = []
DUMP_BEFORE_TIMEOUT_S = 30


def _dump_running_stacks(test: str) -> None:
    """Every running stack's threads (SIGUSR1: faulthandler in the stack) and its log tail, on
    the worker's stderr, so a test about to time out shows what the stack was waiting for."""
    for stack in _LAUNCHED:
        if stack.process.poll() is None:
            stack.process.send_signal(signal.SIGUSR1)
    time.sleep(2)
    for stack in _LAUNCHED:
        if stack.process.poll() is None:
            sys.__stderr__.write(f"\n==== {test}: the local stack at {stack.api_url} has not answered; "
                                 f"its threads and log ====\n{stack.logs()[-20000:]}\n")
    sys.__stderr__.flush()


@pytest.fixture(autouse=True)
def dump_stacks_before_timeout(request) -> Iterator[None]:
    """pytest-timeout ends a hung test's worker with the worker's own stacks only; the local
    stack runs in a process of its own, so dump it just before."""
    limit = float(request.config.getini("timeout") or 0)
    if limit <= DUMP_BEFORE_TIMEOUT_S:
        yield
        return
    timer = threading.Timer(limit - DUMP_BEFORE_TIMEOUT_S, _dump_running_stacks, (request.node.nodeid,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.fixture
def start_stack():
    """Another stack of one's own, e.g. to stop it: `stack = start_stack(tmp_path)`."""
    return launch_stack


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with tempfile.TemporaryDirectory(prefix="imgdrop-e2e-") as tmp:
        stack = launch_stack(Path(tmp))
        try:
            yield stack
        finally:
            code = stack.stop()
            assert code == 0, f"the local stack exited with {code}:\n{stack.logs()[-4000:]}"


CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, as root, on a machine without outside network (no browser download here).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
