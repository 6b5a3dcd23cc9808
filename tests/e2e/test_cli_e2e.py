"""The `imgdrop` CLI against the local stack: a folder of images, --wait --json, then a repeat."""

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


def make_images(folder: Path, count: int = 3) -> list[Path]:
    """Distinct noise images (never fetched): random bytes make each one new to the dedupe."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = Image.frombytes("RGB", (320, 240), os.urandom(320 * 240 * 3))
        path = folder / f"img-{i}.{'jpg' if i % 2 == 0 else 'png'}"
        image.save(path)
        paths.append(path)
    return paths


def run_cli(stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("cli", "layers/core")),
        "IMGDROP_API": stack.api_url,
        "IMGDROP_TOKEN": token,
    }
    return subprocess.run(
        [sys.executable, "-m", "imgdrop_cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def upload_keys(stack, tenant: str) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
    )
    keys = []
    for bucket in s3.list_buckets()["Buckets"]:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket["Name"], Prefix=f"uploads/{tenant}/"
        )
        keys += [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    return keys


def test_a_folder_uploads_and_a_repeat_answers_duplicates_without_bytes(local_stack, tmp_path):
    # Given a folder of three new images and a tenant of our own
    tenant = "cli-" + uuid.uuid4().hex[:8]
    token = local_stack.token(tenant=tenant)
    folder = tmp_path / "photos"
    make_images(folder / "nested", 1)
    make_images(folder, 2)
    (folder / "readme.txt").write_text("not an image")

    # When the CLI uploads the folder and waits
    first = run_cli(local_stack, token, "upload", str(folder), "--wait", "--json")

    # Then every image is ready, with its size and variants
    assert first.returncode == 0, first.stderr + first.stdout
    images = json.loads(first.stdout)
    assert len(images) == 3
    assert [i["status"] for i in images] == ["ready"] * 3, images
    for image in images:
        assert image["width"] == 320 and image["height"] == 240
        assert image["variants"], image
        assert len(image["sha256"]) == 64
    sent_before = upload_keys(local_stack, tenant)

    # When the same folder is uploaded again
    again = run_cli(local_stack, token, "upload", str(folder), "--wait", "--json")

    # Then each file is answered as a duplicate of the first upload, before any byte is sent
    assert again.returncode == 0, again.stderr + again.stdout
    repeats = json.loads(again.stdout)
    assert [r["status"] for r in repeats] == ["duplicate"] * 3
    assert [r["error"]["code"] for r in repeats] == ["image_already_exists"] * 3
    assert sorted(r["duplicate_of"] for r in repeats) == sorted(i["id"] for i in images)
    assert upload_keys(local_stack, tenant) == sent_before


def test_get_prints_the_image_and_an_expired_token_exits_1(local_stack, tmp_path):
    tenant = "cli-" + uuid.uuid4().hex[:8]
    token = local_stack.token(tenant=tenant)
    (path,) = make_images(tmp_path, 1)
    done = run_cli(local_stack, token, "upload", str(path), "--wait", "--json")
    assert done.returncode == 0, done.stderr
    image_id = json.loads(done.stdout)[0]["id"]

    got = run_cli(local_stack, token, "get", image_id)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["id"] == image_id

    expired = run_cli(local_stack, local_stack.token(tenant=tenant, ttl=-60), "get", image_id)
    assert expired.returncode == 1
    assert "token_expired" in expired.stderr
