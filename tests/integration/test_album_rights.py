"""Album rights inside one tenant: changing needs `upload` where the image is and where it goes;
nothing reveals an image the caller may not read (404, no ids in dedupe answers), nor which albums
and images exist (an unreadable one answers as a missing one)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from trust_helpers import image_path

from lambdas import Functions, china_jpeg, upload

MISSING = "01J0000000000000000000000Z"


@pytest.fixture
def functions(aws):
    return Functions(aws)


def new_album(functions: Functions, name: str) -> str:
    status, album = functions.api("POST", "/v1/albums", "/v1/albums", {"name": name})
    assert status == 201
    return album["id"]


@pytest.fixture
def albums(functions):
    """Albums A and B of acme, and a settled image in B."""
    a, b = new_album(functions, "A"), new_album(functions, "B")
    data = china_jpeg()
    image_id, key = upload(functions, data, album_id=b)
    functions.process_and_finalize(key, len(data))
    status, image = functions.image(image_id)
    assert (status, image["status"]) == (200, "ready"), image
    return {"A": a, "B": b, "image": image_id, "data": data}


def errors_code(body) -> str:
    return body["errors"][0]["code"]


def code_and_pointer(body) -> tuple[str, str | None]:
    error = body["errors"][0]
    return error["code"], error.get("source", {}).get("pointer")


def test_a_read_right_does_not_change_move_or_delete(functions, albums):
    rights = {albums["B"]: ["read"], albums["A"]: ["upload", "read"]}
    path, route, params = image_path(albums["image"])
    for change in ({"album_id": None}, {"album_id": albums["A"]}, {"title": "mine now"}):
        status, body = functions.api("PATCH", path, route, change, path_params=params, albums=rights)
        assert (status, errors_code(body)) == (403, "album_forbidden"), change
    status, body = functions.api("DELETE", path, route, path_params=params, albums=rights)
    assert (status, errors_code(body)) == (403, "album_forbidden")
    status, image = functions.api("GET", path, route, path_params=params, albums=rights)
    assert (status, image["album_id"], image["title"]) == (200, albums["B"], None)


def test_moving_needs_upload_on_both_albums_and_out_of_every_album_is_a_move(functions, albums):
    path, route, params = image_path(albums["image"])
    only_source = {albums["B"]: ["upload", "read"], albums["A"]: ["read"]}
    status, body = functions.api("PATCH", path, route, {"album_id": albums["A"]}, path_params=params,
                        albums=only_source)
    assert (status, errors_code(body)) == (403, "album_forbidden")
    status, body = functions.api("PATCH", path, route, {"album_id": None}, path_params=params,
                        albums=only_source)
    assert (status, errors_code(body)) == (403, "album_forbidden")

    both = {albums["B"]: ["upload", "read"], albums["A"]: ["upload", "read"]}
    status, image = functions.api("PATCH", path, route, {"album_id": albums["A"], "title": "moved"},
                         path_params=params, albums=both)
    assert (status, image["album_id"], image["title"]) == (200, albums["A"], "moved")
    # a token without an albums claim may move it anywhere, out of every album too
    status, image = functions.api("PATCH", path, route, {"album_id": None}, path_params=params)
    assert (status, image["album_id"]) == (200, None)


def test_an_unreadable_image_answers_like_a_missing_one(functions, albums):
    rights = {albums["A"]: ["upload", "read"]}
    path, route, params = image_path(albums["image"])
    for method, body in (("GET", None), ("PATCH", {"title": "x"}), ("DELETE", None)):
        status, answer = functions.api(method, path, route, body, path_params=params, albums=rights)
        assert (status, errors_code(answer)) == (404, "not_found"), method
    status, answer = functions.api("GET", path + "/similar", route + "/similar", path_params=params,
                          albums=rights)
    assert (status, errors_code(answer)) == (404, "not_found")


def test_images_in_no_album_are_out_of_reach_under_an_albums_claim(functions, albums):
    data = china_jpeg()
    loose_id, key = upload(functions, data + b"\0\0")  # other bytes, no album
    rights = {albums["A"]: ["upload", "read"]}
    path, route, params = image_path(loose_id)
    status, answer = functions.api("GET", path, route, path_params=params, albums=rights)
    assert (status, errors_code(answer)) == (404, "not_found")
    item = {"filename": "x.jpg", "content_type": "image/jpeg", "size": 10}
    status, batch = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]}, albums=rights)
    assert status == 200
    assert batch["items"][0]["error"]["code"] == "album_forbidden"
    assert batch["items"][0]["error"]["source"]["pointer"] == "/items/0/album_id"


def test_an_exact_repeat_of_an_unreadable_image_is_not_answered_with_its_id(functions, albums):
    data = albums["data"]
    rights = {albums["A"]: ["upload", "read"]}
    item = {"filename": "again.jpg", "content_type": "image/jpeg", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "album_id": albums["A"]}
    status, batch = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]}, albums=rights)
    assert status == 200
    answer = batch["items"][0]
    assert answer["status"] == "pending" and answer["id"] != albums["image"], answer

    # the bytes are processed as an image of its own, and nothing in it names the other one
    key = answer["upload"]["fields"]["key"]
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=key, Body=data, ContentType="image/jpeg")
    functions.process_and_finalize(key, len(data))
    path, route, params = image_path(answer["id"])
    status, image = functions.api("GET", path, route, path_params=params, albums=rights)
    assert (status, image["status"], image["duplicate_of"]) == (200, "ready", None)
    assert albums["image"] not in str(image)

    # the direct upload path answers the same way
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    status, direct = functions.api("POST", "/v1/images", "/v1/images", {"file": uri, "album_id": albums["A"]},
                          albums=rights)
    assert albums["image"] not in str(direct)


def test_similar_lists_only_images_the_caller_may_read(functions, albums):
    data = albums["data"]
    near = data + b"\0"  # other bytes (after the end marker), the same picture
    near_id, key = upload(functions, near, album_id=albums["A"])
    functions.process_and_finalize(key, len(near))
    full_path, route, params = image_path(near_id)
    status, image = functions.api("GET", full_path, route, path_params=params)
    assert [s["id"] for s in image["similar"]] == [albums["image"]]  # a full token sees it

    rights = {albums["A"]: ["upload", "read"]}
    status, image = functions.api("GET", full_path, route, path_params=params, albums=rights)
    assert status == 200 and image["similar"] == []
    status, similar = functions.api("GET", full_path + "/similar", route + "/similar", path_params=params,
                           albums=rights)
    assert status == 200 and similar["items"] == []


# --------------------------------------------------------------------------- existence never leaks


def presign_outcome(functions: Functions, rights, scope: str = "images:read images:write", **fields):
    item = {"filename": "x.jpg", "content_type": "image/jpeg", "size": 10, **fields}
    status, batch = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]},
                                  scope=scope, albums=rights)
    assert status == 200, batch
    answer = batch["items"][0]
    return answer["error"] if "error" in answer else answer["status"]


def test_an_unreadable_album_answers_like_a_missing_one(functions, albums):
    def get(album_id, rights):
        return functions.api("GET", f"/v1/albums/{album_id}", "/v1/albums/{id}",
                             path_params={"id": album_id}, albums=rights)

    for rights in ({albums["A"]: ["upload", "read"]}, {albums["B"]: ["upload"]}):
        hidden, missing = get(albums["B"], rights), get(MISSING, rights)
        assert missing == (404, {"errors": [{"status": "404", "code": "not_found",
                                             "title": missing[1]["errors"][0]["title"]}]}), missing
        assert hidden == missing, (rights, hidden, missing)
    status, album = get(albums["B"], {albums["B"]: ["read"]})
    assert (status, album["id"]) == (200, albums["B"])


def test_uploading_into_an_album_without_the_upload_right_is_forbidden_whether_or_not_it_exists(
    functions, albums
):
    rights = {albums["A"]: ["upload", "read"], albums["B"]: ["read"], MISSING[:-1] + "Y": ["read"]}
    for album_id in (albums["B"], MISSING, MISSING[:-1] + "Y"):
        error = presign_outcome(functions, rights, album_id=album_id)
        assert (error["code"], error["status"], error["source"]["pointer"]) == (
            "album_forbidden", "403", "/items/0/album_id"), (album_id, error)
    # the direct upload path checks the same way
    uri = "data:image/jpeg;base64," + base64.b64encode(china_jpeg() + b"\0\0").decode()
    for album_id in (albums["B"], MISSING):
        status, body = functions.api("POST", "/v1/images", "/v1/images", {"file": uri, "album_id": album_id},
                                     albums=rights)
        assert (status, code_and_pointer(body)) == (403, ("album_forbidden", "/album_id")), (album_id, body)
    # only an album it may upload to that does not exist is album_not_found; so without a claim
    error = presign_outcome(functions, {MISSING: ["upload", "read"]}, album_id=MISSING)
    assert (error["code"], error["status"]) == ("album_not_found", "404")
    error = presign_outcome(functions, None, album_id=MISSING)
    assert (error["code"], error["status"]) == ("album_not_found", "404")


def test_moving_into_an_album_without_the_upload_right_is_forbidden_whether_or_not_it_exists(
    functions, albums
):
    mine, _ = upload(functions, china_jpeg() + b"\0\0\0", album_id=albums["A"])
    path, route, params = image_path(mine)
    rights = {albums["A"]: ["upload", "read"], albums["B"]: ["read"]}
    for album_id in (albums["B"], MISSING):
        status, body = functions.api("PATCH", path, route, {"album_id": album_id}, path_params=params,
                                     albums=rights)
        assert (status, code_and_pointer(body)) == (403, ("album_forbidden", "/album_id")), (album_id, body)
    status, body = functions.api("PATCH", path, route, {"album_id": MISSING}, path_params=params,
                                 albums={**rights, MISSING: ["upload"]})
    assert (status, code_and_pointer(body)) == (404, ("album_not_found", "/album_id"))
    status, body = functions.api("PATCH", path, route, {"album_id": MISSING}, path_params=params)
    assert (status, code_and_pointer(body)) == (404, ("album_not_found", "/album_id"))
    status, image = functions.image(mine)
    assert (status, image["album_id"]) == (200, albums["A"])


def test_an_unreadable_parent_answers_like_a_missing_one(functions, albums):
    rights = {albums["A"]: ["upload", "read"]}
    missing = presign_outcome(functions, rights, album_id=albums["A"], parent_id=MISSING)
    assert (missing["code"], missing["status"], missing["source"]["pointer"]) == (
        "parent_not_found", "404", "/items/0/parent_id")
    hidden = presign_outcome(functions, rights, album_id=albums["A"], parent_id=albums["image"])
    assert hidden == missing
    # a token without images:read may read no image at all
    write_only = presign_outcome(functions, None, scope="images:write", parent_id=albums["image"])
    assert write_only == missing
    # the direct upload path too
    uri = "data:image/jpeg;base64," + base64.b64encode(china_jpeg() + b"\0\0").decode()
    answers = [
        functions.api("POST", "/v1/images", "/v1/images",
                      {"file": uri, "album_id": albums["A"], "parent_id": parent}, albums=rights)
        for parent in (albums["image"], MISSING)
    ]
    assert answers[0] == answers[1] and answers[0][0] == 404, answers
    # a parent the token may read is taken
    assert presign_outcome(functions, None, parent_id=albums["image"]) == "pending"


def test_a_token_without_images_read_gets_no_image_id_from_dedupe(functions, albums):
    data, existing = albums["data"], albums["image"]
    item = {"filename": "again.jpg", "content_type": "image/jpeg", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}
    status, batch = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]},
                                  scope="images:write")
    assert status == 200
    answer = batch["items"][0]
    assert answer["status"] == "pending" and existing not in str(answer), answer

    # processed as an image of its own: neither processing nor finalize calls it a duplicate
    key = answer["upload"]["fields"]["key"]
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=key, Body=data, ContentType="image/jpeg")
    functions.process_and_finalize(key, len(data))
    status, image = functions.image(answer["id"])
    assert (status, image["status"], image["duplicate_of"]) == (200, "ready", None), image
    assert existing not in str(image)

    # the direct upload path answers the same way
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    status, direct = functions.api("POST", "/v1/images", "/v1/images", {"file": uri}, scope="images:write")
    assert status == 201 and existing not in str(direct), direct


def test_an_albums_claim_narrows_an_admin_token_too(functions, albums):
    """Before the mend `admin` lifted the claim: such a token read album B's image, and could
    register a webhook that carries every album's events or reprocess the whole tenant."""
    admin = "images:read images:write tags:write admin"
    rights = {albums["A"]: ["upload", "read"]}
    image_id = albums["image"]
    status, body = functions.api("GET", f"/v1/images/{image_id}", "/v1/images/{id}",
                                 path_params={"id": image_id}, scope=admin, albums=rights)
    assert (status, errors_code(body)) == (404, "not_found")
    status, body = functions.api("POST", "/v1/webhooks", "/v1/webhooks",
                                 {"url": "https://hooks.example/x", "events": ["image.ready"]},
                                 scope=admin, albums=rights)
    assert (status, errors_code(body)) == (403, "album_forbidden")
    status, body = functions.api("POST", "/v1/reprocess", "/v1/reprocess", {"ids": [image_id]},
                                 scope=admin, albums=rights)
    assert (status, errors_code(body)) == (403, "album_forbidden")
    # without a claim, admin reaches every album
    status, _ = functions.api("GET", f"/v1/images/{image_id}", "/v1/images/{id}",
                              path_params={"id": image_id}, scope=admin)
    assert status == 200
