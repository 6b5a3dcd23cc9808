"""The catalogue routes through the api handler: list filters and pages, PATCH, DELETE, tags,
albums, and the EventBridge events finalize emits."""

from __future__ import annotations

import json

import pytest

from lambdas import Functions, china_jpeg, image_files, sample, upload


@pytest.fixture
def functions(aws):
    return Functions(aws)


def ready_image(functions: Functions, data: bytes | None = None, **fields) -> str:
    data = data or china_jpeg()
    image_id, key = upload(functions, data, **fields)
    functions.process_and_finalize(key, len(data))
    return image_id


def test_list_filters_by_album_tag_and_status_and_pages_with_a_cursor(functions):
    _, album = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "Trip"})
    _, tag = functions.api("POST", "/v1/tags", "/v1/tags", {"label": "wall"})
    in_album = ready_image(functions, album_id=album["id"], tags=[tag["id"]])
    pending_ids = [upload(functions, b"x" * (n + 10))[0] for n in range(3)]

    def listing(**query):
        event_query = {k: str(v) for k, v in query.items()}
        status, body = functions.api("GET", "/v1/images", "/v1/images", query=event_query)
        assert status == 200, body
        return body

    assert [i["id"] for i in listing(album_id=album["id"])["items"]] == [in_album]
    assert [i["id"] for i in listing(tag=tag["id"])["items"]] == [in_album]
    assert sorted(i["id"] for i in listing(status="pending")["items"]) == sorted(pending_ids)

    seen, cursor = [], None
    for _ in range(10):
        page = listing(limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted([in_album, *pending_ids])  # newest first, every image once

    status, body = functions.api("GET", "/v1/images", "/v1/images", query={"cursor": "not-a-cursor"})
    assert (status, body["errors"][0]["code"]) == (400, "cursor_invalid")


def test_patch_changes_descriptive_fields_tags_and_slug_with_field_errors(functions):
    image_id = ready_image(functions, title="Before")
    _, tag = functions.api("POST", "/v1/tags", "/v1/tags", {"label": "renamed"})
    path, route, params = f"/v1/images/{image_id}", "/v1/images/{id}", {"id": image_id}

    status, image = functions.api(
        "PATCH",
        path,
        route,
        {"title": "After", "rating": 4, "tags": [tag["id"], "ghost"], "slug": "after", "privacy": "private"},
        path_params=params,
    )
    assert status == 200, image
    assert (image["title"], image["rating"], image["slug"], image["privacy"]) == (
        "After",
        4,
        "after",
        "private",
    )
    assert image["tags"] == [
        {"id": tag["id"], "category": None, "label": "renamed"},
        {"id": "ghost", "error": "tag_error"},
    ]

    status, body = functions.api("PATCH", path, route, {"rating": 9, "filename": "x.jpg"}, path_params=params)
    assert status == 400
    assert {(e["code"], e["source"]["pointer"]) for e in body["errors"]} == {
        ("rating_inclusion", "/rating"),
        ("unknown_field", "/filename"),
    }

    other_id = ready_image(functions, data=china_jpeg()[:-2] + b"\xff\xd9", title="Other")
    status, body = functions.api(
        "PATCH", f"/v1/images/{other_id}", route, {"slug": "after"}, path_params={"id": other_id}
    )
    assert (status, body["errors"][0]["code"]) == (400, "slug_taken")


def test_delete_removes_record_original_variants_and_frees_the_hash(functions, aws):
    data = china_jpeg()
    image_id = ready_image(functions, data)
    # four variants, each in its formats (avif only up to a 1024 px box), and the verified original
    files = image_files(aws, image_id)
    assert {key.rsplit("/", 1)[1] for key in files} >= {"large.jpg", "large.webp", "thumb.avif", "original.jpg"}

    status, _ = functions.api(
        "DELETE", f"/v1/images/{image_id}", "/v1/images/{id}", path_params={"id": image_id}
    )
    assert status == 204
    assert functions.image(image_id)[0] == 404
    assert image_files(aws, image_id) == set()
    assert aws.s3.list_objects_v2(Bucket=aws.bucket_name, Prefix=f"uploads/acme/{image_id}")["KeyCount"] == 0

    again_id = ready_image(functions, data)  # the same bytes are new again once deleted
    assert functions.image(again_id)[1]["status"] == "ready"
    status, similar = functions.api(
        "GET", f"/v1/images/{again_id}/similar", "/v1/images/{id}/similar", path_params={"id": again_id}
    )
    assert similar["items"] == []  # the deleted image left the near-duplicate index too


def test_tags_and_albums_create_read_and_list(functions):
    status, tag = functions.api("POST", "/v1/tags", "/v1/tags", {"category": "places", "label": "Great Wall"})
    assert status == 201
    assert functions.api("GET", f"/v1/tags/{tag['id']}", "/v1/tags/{id}", path_params={"id": tag["id"]}) == (
        200,
        tag,
    )
    assert functions.api("GET", "/v1/tags", "/v1/tags")[1] == {"items": [tag]}
    status, body = functions.api("POST", "/v1/tags", "/v1/tags", {"label": ""})
    assert (status, body["errors"][0]["code"]) == (400, "label_blank")
    status, body = functions.api(
        "POST", "/v1/tags", "/v1/tags", {"label": "x"}, scope="images:read images:write"
    )
    assert (status, body["errors"][0]["code"]) == (403, "insufficient_scope")

    status, album = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "Trip"})
    assert status == 201 and album["name"] == "Trip"
    assert functions.api(
        "GET", f"/v1/albums/{album['id']}", "/v1/albums/{id}", path_params={"id": album["id"]}
    ) == (200, album)
    assert functions.api("GET", "/v1/albums/nope", "/v1/albums/{id}", path_params={"id": "nope"})[0] == 404


def test_comma_separated_tag_names_are_found_or_created(functions):
    first = ready_image(functions, tags="Sunset, Beach")
    image = functions.image(first)[1]
    labels = {t["label"]: t["id"] for t in image["tags"]}
    assert set(labels) == {"Sunset", "Beach"}
    second_id, _ = upload(functions, b"z" * 50, tags="sunset")
    assert functions.image(second_id)[1]["tags"] == [{"id": labels["Sunset"]}]  # the same tag, found by label


def test_finalize_emits_an_image_ready_event_with_the_image_object(functions, aws):
    queue_url = aws.sqs.create_queue(QueueName="image-events")["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = aws.client("events")
    events.put_rule(Name="imgdrop-images", EventPattern=json.dumps({"source": ["imgdrop"]}))
    events.put_targets(Rule="imgdrop-images", Targets=[{"Id": "queue", "Arn": queue_arn}])

    image_id = ready_image(functions)
    messages = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    received = [json.loads(m["Body"]) for m in messages]
    assert [(e["source"], e["detail-type"], e["detail"]["id"]) for e in received] == [
        ("imgdrop", "Image Ready", image_id)
    ]
    assert received[0]["detail"]["status"] == "ready"


def test_the_docs_page_is_swagger_ui_over_the_served_document(functions):
    event = sample("api_health.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /v1/docs"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/docs"
    page = functions.invoke("ApiFunction", event)
    _, document = functions.api("GET", "/v1/openapi.json", "/v1/openapi.json")

    assert page["statusCode"] == 200
    assert page["headers"]["Content-Type"] == "text/html"
    html = page["body"]
    assert "SwaggerUIBundle" in html and "<script src=" not in html  # inlined, nothing fetched
    scripts = html.split("<script>")[1:]
    spec_script = next(script for script in scripts if "openapi" in script and "/v1/uploads" in script)
    for path in document["paths"]:
        assert json.dumps(path) in spec_script
    # the page points Swagger UI's URL bar at ?format=json: the same document
    event["queryStringParameters"] = {"format": "json"}
    event["rawQueryString"] = "format=json"
    as_json = functions.invoke("ApiFunction", event)
    assert as_json["statusCode"] == 200 and json.loads(as_json["body"])["paths"] == document["paths"]
