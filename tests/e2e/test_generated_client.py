"""A client generated from the running stack's `/v1/openapi.json`, used unchanged.

openapi-typescript writes the document's types, tsc type-checks ts_client/client.test.ts against them
(strict) and compiles it, node's test runner runs it against the local stack with openapi-fetch: a JSON
upload (`file` data URI) through the generated types, the image read back until ready, the list, a 404
whose body is typed as the error model, a field error. The npm packages come from
ts_client/package-lock.json (ts_client/install.sh: `make e2e` and `make test` run it; this test runs it
too, from npm's cache first, if node_modules is missing).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent / "ts_client"
TIMEOUT_S = 300


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def ts_client() -> Path:
    """ts_client with its node_modules installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed (the same as web/build.sh)")
    installed = _run(["bash", str(HERE / "install.sh")], HERE)
    assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
    return HERE


def _png() -> str:
    """A PNG of this run's own (no earlier upload's exact repeat), base64."""
    out = io.BytesIO()
    shade = time.time_ns() % 200
    image = Image.new("RGB", (160, 120), (shade, 80, 255 - shade))
    image.paste((255 - shade, shade, 40), (40, 30, 120, 90))
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_a_client_generated_from_the_document_works_unchanged(ts_client, local_stack, tmp_path):
    work = tmp_path / "ts"
    work.mkdir()
    for name in ("client.test.ts", "tsconfig.json", "package.json"):
        shutil.copy(ts_client / name, work / name)
    (work / "node_modules").symlink_to(ts_client / "node_modules", target_is_directory=True)
    bin_dir = ts_client / "node_modules" / ".bin"

    generated = _run([str(bin_dir / "openapi-typescript"), f"{local_stack.api_url}/v1/openapi.json",
                      "-o", "api.d.ts"], work)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    compiled = _run([str(bin_dir / "tsc"), "-p", "tsconfig.json"], work)
    assert compiled.returncode == 0, f"the generated types do not fit the client's use:\n{compiled.stdout}"

    token = local_stack.token(tenant="generated-client", scope="images:read images:write")
    ran = _run(["node", "--test", "dist/"], work, IMGDROP_API=local_stack.api_url, IMGDROP_TOKEN=token,
               IMGDROP_TEST_PNG=_png())
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-2000:]
    assert "# pass 1" in ran.stdout and "# fail 0" in ran.stdout, ran.stdout
