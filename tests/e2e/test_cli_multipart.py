"""`imgdrop upload` as an S3 multipart upload against the local stack: interrupted after one part,
then `--resume` lists the parts S3 holds and sends only the others; the image ends ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from PIL import Image

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def run_cli(stack, token: str, config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgdrop_cli.main", *args],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("cli", "layers/core", "infra/local")),
            "IMGDROP_API": stack.api_url,
            "IMGDROP_TOKEN": token,
            "XDG_CONFIG_HOME": str(config),  # the resume file: $XDG_CONFIG_HOME/imgdrop/uploads.json
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


def s3_client(stack):
    return boto3.client(
        "s3",
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
    )


def bucket_of(s3, key: str) -> str:
    for bucket in s3.list_buckets()["Buckets"]:
        uploads = s3.list_multipart_uploads(Bucket=bucket["Name"], Prefix=key).get("Uploads", [])
        if uploads:
            return bucket["Name"]
    raise AssertionError(f"no multipart upload of {key} in any bucket")


@pytest.fixture
def noise_png(tmp_path: Path) -> Path:
    """A real ~16 MB image (noise does not compress): four parts of 5 MiB, the last one short."""
    path = tmp_path / "scan.png"
    Image.frombytes("RGB", (2400, 2300), os.urandom(2400 * 2300 * 3)).save(path, compress_level=1)
    assert 15 * MiB < path.stat().st_size < 20 * MiB
    return path


def test_an_interrupted_multipart_upload_resumes_with_only_the_missing_parts(local_stack, noise_png, tmp_path):
    tenant = "mp-" + uuid.uuid4().hex[:8]
    token = local_stack.token(tenant=tenant)
    config = tmp_path / "config"
    args = ("upload", str(noise_png), "--multipart", "--part-size", "5", "--json")

    # Given an upload stopped (as Ctrl-C would) once its first part is in S3
    first = run_cli(local_stack, token, config, *args, "--parallel", "1", IMGDROP_STOP_AFTER_PARTS="1")
    assert first.returncode == 130, first.stderr + first.stdout
    (stopped,) = json.loads(first.stdout)
    assert stopped["error"]["code"] == "interrupted", stopped
    assert stopped["transfer"]["sent"] == [1] and stopped["transfer"]["parts"] == 4
    state = json.loads((config / "imgdrop" / "uploads.json").read_text())
    (entry,) = state["uploads"].values()
    assert entry["image_id"] == stopped["id"] and entry["upload_id"] and entry["key"]
    s3 = s3_client(local_stack)
    bucket = bucket_of(s3, entry["key"])
    listed = s3.list_parts(Bucket=bucket, Key=entry["key"], UploadId=entry["upload_id"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1]
    # When the same command runs again with --resume (and parts in parallel)
    second = run_cli(local_stack, token, config, *args, "--resume", "--wait", "--parallel", "4")

    # Then only parts 2..4 are sent, the upload completes, and the image is processed
    assert second.returncode == 0, second.stderr + second.stdout
    (image,) = json.loads(second.stdout)
    assert image["id"] == stopped["id"]
    assert image["transfer"]["reused"] == [1]
    assert image["transfer"]["sent"] == [2, 3, 4]
    assert image["status"] == "ready", image
    assert (image["width"], image["height"]) == (2400, 2300)
    assert image["bytes"] == noise_png.stat().st_size
    assert json.loads((config / "imgdrop" / "uploads.json").read_text())["uploads"] == {}


def test_a_forced_multipart_upload_with_parallel_parts_reaches_ready(local_stack, noise_png, tmp_path):
    token = local_stack.token(tenant="mp-" + uuid.uuid4().hex[:8])
    done = run_cli(
        local_stack, token, tmp_path / "config",
        "upload", str(noise_png), "--multipart", "--part-size", "5", "--parallel", "4", "--wait", "--json",
    )
    assert done.returncode == 0, done.stderr + done.stdout
    (image,) = json.loads(done.stdout)
    assert image["status"] == "ready", image
    assert image["transfer"]["sent"] == [1, 2, 3, 4] and image["transfer"]["reused"] == []
