"""Privacy and delivery: where an image's files live and how their URLs are made, through
privacy changes, deletion, PATCHes racing each other and a PATCH that lands mid-processing.

A public (or unlisted) image's variants live under public/ and their URLs are unsigned and the
same on every read; a private image's live under images/ and every URL is signed; the original
is always signed. Turning private moves the files and asks the CDN to forget the public paths.
"""

from __future__ import annotations

import pytest
from thread_runs import Run
from trust_helpers import Gate, image_path

from imgdrop.delivery.invalidation import Invalidator
from imgdrop.lifecycle.placement import variant_keys
from imgdrop.store.db import Repository

from lambdas import Functions, china_jpeg, upload


@pytest.fixture
def functions(aws):
    return Functions(aws)


@pytest.fixture
def invalidations(monkeypatch) -> list[tuple[list[str], str]]:
    """What the CDN was asked to forget (moto has no CloudFront invalidation to look at)."""
    calls: list[tuple[list[str], str]] = []

    def record(self, paths, token):
        calls.append((list(paths), token))
        return []

    monkeypatch.setattr(Invalidator, "invalidate", record)
    return calls


def stored(aws, prefix: str) -> set[str]:
    listing = aws.s3.list_objects_v2(Bucket=aws.bucket_name, Prefix=prefix)
    return {obj["Key"] for obj in listing.get("Contents", [])}


def urls_of(image: dict) -> list[str]:
    return [
        url
        for variant in image["variants"].values()
        for url in [variant["url"], variant["auto_url"], *(f["url"] for f in variant["formats"].values())]
    ] + [entry for srcset in image["srcset"].values() for entry in srcset.split(", ")]


def ready_image(functions: Functions, **fields) -> str:
    data = china_jpeg()
    image_id, key = upload(functions, data, **fields)
    functions.process_and_finalize(key, len(data))
    return image_id


def patch(functions: Functions, image_id: str, body: dict) -> tuple[int, dict]:
    path, route, params = image_path(image_id)
    return functions.api("PATCH", path, route, body, path_params=params)


def files_named_exist(aws, image_id: str) -> set[str]:
    record = Repository().get_image("acme", image_id)
    assert record is not None
    named = set(variant_keys(record.variants))
    everything = stored(aws, f"images/acme/{image_id}/") | stored(aws, f"public/acme/{image_id}/")
    assert named and named <= everything, "a file the record names is gone"
    return named


def test_public_urls_are_unsigned_and_identical_on_every_read(aws, functions):
    image_id = ready_image(functions)
    _, first = functions.image(image_id)
    _, again = functions.image(image_id)
    assert urls_of(first) == urls_of(again)
    assert all("Signature=" not in url and "/public/acme/" in url for url in urls_of(first))
    assert set(first["srcset"]) >= {"jpeg", "webp"}
    assert first["variants"]["medium"]["auto_url"].endswith(".auto." + "-".join(
        ["avif", "webp", "jpg"] if "avif" in first["variants"]["medium"]["formats"] else ["webp", "jpg"]
    ))
    assert "Signature=" in first["original"]["url"]


def test_turning_private_moves_the_files_signs_every_url_and_invalidates(aws, functions, invalidations):
    image_id = ready_image(functions)
    public_files = stored(aws, f"public/acme/{image_id}/")
    assert public_files

    status, image = patch(functions, image_id, {"privacy": "private"})
    assert status == 200, image
    assert stored(aws, f"public/acme/{image_id}/") == set()
    assert files_named_exist(aws, image_id) == {key.replace("public/", "images/", 1) for key in public_files}
    assert all("Signature=" in url and "/images/acme/" in url for url in urls_of(image))
    assert invalidations == [([f"/public/acme/{image_id}/*"], invalidations[0][1])]

    # a retry finds the files moved and still asks the CDN to forget the public paths
    assert patch(functions, image_id, {"privacy": "private"})[0] == 200
    assert len(invalidations) == 2 and invalidations[1][0] == [f"/public/acme/{image_id}/*"]

    status, image = patch(functions, image_id, {"privacy": "unlisted"})
    assert status == 200
    assert all(key.startswith("public/") for key in files_named_exist(aws, image_id))
    assert [key.rsplit("/", 1)[1] for key in stored(aws, f"images/acme/{image_id}/")] == ["original.jpg"]
    assert all("Signature=" not in url for url in urls_of(image))


def test_deleting_removes_every_file_and_invalidates(aws, functions, invalidations):
    image_id = ready_image(functions)
    path, route, params = image_path(image_id)
    assert functions.api("DELETE", path, route, path_params=params)[0] == 204
    assert stored(aws, f"public/acme/{image_id}/") == stored(aws, f"images/acme/{image_id}/") == set()
    assert invalidations[-1][0] == [f"/public/acme/{image_id}/*"]


def test_a_private_upload_is_stored_private_from_the_start(aws, functions):
    image_id = ready_image(functions, privacy="private")
    assert stored(aws, f"public/acme/{image_id}/") == set()
    _, image = functions.image(image_id)
    assert all("Signature=" in url for url in urls_of(image))


def test_a_patch_to_private_while_processing_is_honoured_by_finalize(aws, functions):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    processed = functions.process(key, len(data))  # the variants went to public/
    assert stored(aws, f"public/acme/{image_id}/")
    status, _ = patch(functions, image_id, {"privacy": "private"})
    assert status == 200
    functions.finalize_success(processed)
    assert stored(aws, f"public/acme/{image_id}/") == set()
    files_named_exist(aws, image_id)
    _, image = functions.image(image_id)
    assert image["status"] == "ready"
    assert all("Signature=" in url for url in urls_of(image))


def test_two_patches_moving_the_same_files_never_delete_the_winners(aws, functions, monkeypatch):
    """A holds after copying to public/; B copies the same keys, wins, and removes images/. A's
    write then fails: it must not remove the copies that B's record names."""
    image_id = ready_image(functions, privacy="private")
    # A is held at its conditional write, after it copied every file
    gate = Gate("A", lambda *args, **kwargs: True)
    monkeypatch.setattr(Repository, "update_image", gate.wrap(Repository.update_image))

    a = Run("A", lambda: patch(functions, image_id, {"privacy": "public"}))
    a.start()
    assert gate.reached.wait(30)
    status, _ = patch(functions, image_id, {"privacy": "public"})  # B, on the main thread
    assert status == 200
    public_files = files_named_exist(aws, image_id)
    assert all(key.startswith("public/") for key in public_files)
    gate.release()
    a.join(30)
    assert a.error is None and a.result[0] == 200, a.result
    assert files_named_exist(aws, image_id) == public_files
    _, image = functions.image(image_id)
    assert all("Signature=" not in url and "/public/acme/" in url for url in urls_of(image))
