"""The `imgdrop` CLI with a fake HTTP layer: parsing, tokens, folders, batches, exit codes, and
S3 multipart uploads (part planning, the resume file, only missing parts sent, retries)."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from imgdrop.auth import TokenVerifier
from imgdrop_cli import main as cli
from imgdrop_cli.api import Api
from imgdrop_cli.files import content_type_of, describe, expand_paths
from imgdrop_cli.multipart import MultipartFile
from imgdrop_cli.resumable import (
    MiB,
    Part,
    ResumeStore,
    choose_part_size,
    complete_body,
    default_state_path,
    parse_list_parts,
    plan_parts,
)
from imgdrop_cli.upload import UploadOptions, item_for

# The local stack's dev secret is short and public on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

S3 = "http://s3.test/bucket"
API = "http://api.test"


# ------------------------------------------------------------------ a fake HTTP layer


class FakeResponse:
    def __init__(self, status: int, body: Any = None, text: str | None = None, headers: dict | None = None):
        self.status_code = status
        self.headers = headers or {}
        self._body = body
        self.text = text if text is not None else (json.dumps(body) if body is not None else "")
        self.content = self.text.encode()
        self.reason = "fake"

    def json(self) -> Any:
        if self._body is None:
            raise ValueError("no JSON")
        return self._body


class FakeImgdrop:
    """Answers POST /v1/uploads, GET /v1/images/{id} and the presigned S3 POST, recording all."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict]] = []
        self.upload_batches: list[list[dict]] = []
        self.s3_bodies: dict[str, bytes] = {}  # key -> the multipart body as sent
        self.sent_at: dict[str, int] = {}  # key -> how many calls had started when its body was sent
        self.existing: dict[str, str] = {}  # sha256 -> existing image id
        self.reject: dict[str, dict] = {}  # filename -> error
        self.statuses: dict[str, list[str]] = {}  # image id -> statuses returned by successive GETs
        self.images: dict[str, dict] = {}
        self.s3_status = 204
        self.uploads_status = 200
        self.uploads_error: dict | None = None
        self._next = 0
        # S3 multipart: upload id -> {part number: bytes}; the objects completed; injected faults
        self.mp_uploads: dict[str, dict[int, bytes]] = {}
        self.mp_keys: dict[str, str] = {}  # upload id -> key
        self.objects: dict[str, bytes] = {}
        self.part_failures: dict[int, int] = {}  # part number -> how many more PUTs answer 503
        self.gone: set[str] = set()  # upload ids S3 no longer knows
        self.sign_calls: list[tuple[str, dict]] = []
        self.sign_status = 200
        self.sign_code = ""

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        self.calls.append((method, url, kwargs))
        if url.startswith(S3 + "/"):
            return self._s3_multipart(method, url, kwargs)
        if url.startswith(S3):
            body = kwargs["data"]
            sent = b"".join(iter(body))
            assert len(sent) == int(kwargs["headers"]["Content-Length"])
            key = re.search(rb'name="key"\r\n\r\n([^\r]+)\r\n', sent).group(1).decode()
            self.s3_bodies[key] = sent
            self.sent_at[key] = len(self.calls)
            if self.s3_status >= 300:
                return FakeResponse(
                    self.s3_status,
                    text="<Error><Code>AccessDenied</Code><Message>Policy expired</Message></Error>",
                )
            return FakeResponse(self.s3_status, text="")
        path = url[len(API) :]
        sign = re.fullmatch(r"/v1/uploads/([^/]+)/sign", path)
        if method == "POST" and sign:
            return self._sign(sign.group(1), kwargs["json"])
        if method == "POST" and path == "/v1/uploads":
            if self.uploads_error is not None:
                return FakeResponse(self.uploads_status, {"errors": [self.uploads_error]})
            items = kwargs["json"]["items"]
            self.upload_batches.append(items)
            return FakeResponse(200, {"items": [self._answer(i, item) for i, item in enumerate(items)]})
        match = re.fullmatch(r"/v1/images/([^/]+)", path)
        if method == "GET" and match:
            image_id = match.group(1)
            if image_id not in self.images:
                return FakeResponse(
                    404, {"errors": [{"status": "404", "code": "not_found", "title": "nope"}]}
                )
            queue = self.statuses.get(image_id) or []
            status = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else "ready")
            return FakeResponse(200, {**self.images[image_id], "status": status})
        return FakeResponse(404, {"errors": [{"status": "404", "code": "not_found", "title": path}]})

    def _answer(self, index: int, item: dict) -> dict:
        if item["filename"] in self.reject:
            return {
                "error": {
                    **self.reject[item["filename"]],
                    "source": {"pointer": f"/items/{index}/content_type"},
                }
            }
        if item.get("sha256") in self.existing:
            return {
                "id": self.existing[item["sha256"]],
                "status": "duplicate",
                "error": {"status": "409", "code": "image_already_exists", "title": "exists"},
            }
        self._next += 1
        image_id = f"img{self._next:03d}"
        self.images[image_id] = {
            "id": image_id,
            "filename": item["filename"],
            "width": 4,
            "height": 3,
            "sha256": item.get("sha256"),
        }
        if item.get("multipart"):
            return {
                "id": image_id,
                "status": "pending",
                "upload": {
                    "method": "multipart",
                    "key": f"uploads/t/{image_id}",
                    "part_size": 8 * MiB,
                    "part_count": max(1, -(-item["size"] // (8 * MiB))),
                    "sign_url": f"/v1/uploads/{image_id}/sign",
                    "expires_at": "2030-01-01T00:00:00Z",
                },
            }
        return {
            "id": image_id,
            "status": "pending",
            "upload": {
                "method": "POST",
                "url": S3,
                "fields": {
                    "key": f"uploads/t/{image_id}",
                    "Content-Type": item["content_type"],
                    "policy": "p0l1cy",
                    "x-amz-signature": "s1g",
                },
                "expires_at": "2030-01-01T00:00:00Z",
            },
        }

    @property
    def s3_posts(self) -> int:
        return sum(1 for _, url, _ in self.calls if url == S3)

    def _sign(self, image_id: str, body: dict) -> FakeResponse:
        self.sign_calls.append((image_id, body))
        if self.sign_status != 200:
            code = self.sign_code or {404: "not_found", 409: "upload_closed", 503: "storage_error"}.get(
                self.sign_status, "x"
            )
            return FakeResponse(
                self.sign_status, {"errors": [{"status": str(self.sign_status), "code": code, "title": code}]}
            )
        query = {"X-Amz-Signature": "s1g", "m": body["method"]}
        if "upload_id" in body:
            query["uploadId"] = body["upload_id"]
        if "part_number" in body:
            query["partNumber"] = str(body["part_number"])
        if body["method"] == "POST" and "upload_id" not in body:
            query["uploads"] = ""
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        key = f"uploads/t/{image_id}"
        return FakeResponse(200, {"url": f"{S3}/{key}?{qs}", "key": key, "headers": {}})

    def _s3_multipart(self, method: str, url: str, kwargs: dict) -> FakeResponse:
        parts = urlsplit(url)
        key = parts.path[len(urlsplit(S3).path) + 1 :]
        query = parse_qs(parts.query, keep_blank_values=True)
        upload_id = (query.get("uploadId") or [None])[0]
        no_such = FakeResponse(404, text="<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>")
        if upload_id is not None and (upload_id in self.gone or upload_id not in self.mp_uploads):
            return no_such
        if method == "POST" and "uploads" in query:
            upload_id = f"up{len(self.mp_uploads) + 1}"
            self.mp_uploads[upload_id] = {}
            self.mp_keys[upload_id] = key
            return FakeResponse(
                200, text=f"<InitiateMultipartUploadResult><Key>{key}</Key><UploadId>{upload_id}</UploadId>"
                "</InitiateMultipartUploadResult>"
            )
        if method == "PUT":
            number = int(query["partNumber"][0])
            body = kwargs["data"]
            data = b"".join(iter(body))
            assert len(data) == int(kwargs["headers"]["Content-Length"])
            if self.part_failures.get(number):
                self.part_failures[number] -= 1
                return FakeResponse(503, text="<Error><Code>SlowDown</Code><Message>later</Message></Error>")
            self.mp_uploads[upload_id][number] = data
            return FakeResponse(200, text="", headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
        if method == "GET":
            rows = "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>&quot;{hashlib.md5(d).hexdigest()}&quot;</ETag>"
                f"<Size>{len(d)}</Size></Part>"
                for n, d in sorted(self.mp_uploads[upload_id].items())
            )
            return FakeResponse(200, text=f"<ListPartsResult><UploadId>{upload_id}</UploadId>{rows}</ListPartsResult>")
        if method == "POST":
            body = kwargs["data"]
            text = body.decode()
            listed = [(int(n), e) for n, e in re.findall(r"<PartNumber>(\d+)</PartNumber><ETag>([^<]+)</ETag>", text)]
            stored = self.mp_uploads[upload_id]
            assert [n for n, _ in listed] == sorted(stored), (listed, sorted(stored))
            for n, etag in listed:
                if etag != f'"{hashlib.md5(stored[n]).hexdigest()}"':
                    return FakeResponse(400, text="<Error><Code>InvalidPart</Code><Message>etag</Message></Error>")
            self.objects[key] = b"".join(stored[n] for n, _ in listed)
            del self.mp_uploads[upload_id]
            return FakeResponse(200, text=f"<CompleteMultipartUploadResult><Key>{key}</Key></CompleteMultipartUploadResult>")
        return FakeResponse(405, text="<Error><Code>MethodNotAllowed</Code></Error>")

    def puts(self) -> list[int]:
        """The part numbers PUT so far (successful or not), in order."""
        return [
            int(parse_qs(urlsplit(url).query)["partNumber"][0])
            for method, url, _ in self.calls
            if method == "PUT" and url.startswith(S3 + "/")
        ]


def run_cli(argv: list[str], fake: FakeImgdrop | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, session=fake, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for var in ("JWT_SECRET", "IMGDROP_API", "IMGDROP_TOKEN", "IMGDROP_STOP_AFTER_PARTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the resume file lives here
    monkeypatch.setattr("time.sleep", lambda s: None)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of three small distinct 'images' (bytes only: the fake API does not decode)."""
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    for name, payload in (
        ("a.jpg", b"\xff\xd8jpeg-a"),
        ("b.png", b"\x89PNG-b"),
        ("nested/c.webp", b"RIFF-c"),
    ):
        (folder / name).write_bytes(payload * 100)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "d.jpg").write_bytes(b"hidden")
    return folder


# ------------------------------------------------------------------ parsing


def test_token_arguments_parse_albums_claims_and_negative_ttl():
    args = cli.build_parser().parse_args(
        [
            "token",
            "--tenant",
            "acme",
            "--album",
            "a1:upload",
            "--album",
            "a2",
            "--ttl",
            "-30",
            "--claim",
            "n=5",
            "--claim",
            "name=bob",
            "--claim",
            'obj={"k": [1]}',
        ]
    )
    assert args.tenant == "acme"
    assert args.album == [("a1", ["upload"]), ("a2", ["upload", "read"])]
    assert args.ttl == -30
    assert dict(args.claim) == {"n": 5, "name": "bob", "obj": {"k": [1]}}


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "--album", "a1:delete"],
        ["token", "--claim", "novalue"],
        ["upload", "x.jpg", "--concurrency", "0"],
        ["upload", "x.jpg", "--purpose", "banner"],
        ["upload"],
    ],
)
def test_bad_arguments_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_upload_arguments_have_script_friendly_defaults():
    args = cli.build_parser().parse_args(["upload", "a.jpg", "dir", "--tag", "t1", "--tag", "t2"])
    assert args.paths == ["a.jpg", "dir"]
    assert args.tags == ["t1", "t2"]
    assert (args.concurrency, args.wait, args.json, args.album_id, args.profile) == (
        4,
        False,
        False,
        None,
        None,
    )


# ------------------------------------------------------------------ tokens


def _decode(token: str, secret: str = cli.LOCAL_DEV_SECRET, **kw) -> dict:
    return jwt.decode(token, secret, algorithms=["HS256"], **kw)


def test_token_is_accepted_by_the_verifier_of_the_local_stack():
    code, out, _ = run_cli(
        [
            "token",
            "--tenant",
            "acme",
            "--scope",
            "images:read images:write",
            "--sub",
            "u1",
            "--album",
            "al:upload,read",
        ]
    )
    assert code == 0
    claims = _decode(out.strip())
    assert claims["tenant"] == "acme" and claims["sub"] == "u1"
    assert claims["albums"] == {"al": ["upload", "read"]}
    assert 3590 <= claims["exp"] - claims["iat"] <= 3600
    principal = TokenVerifier(cli.LOCAL_DEV_SECRET).verify(out.strip())
    assert principal.tenant == "acme" and principal.scopes == {"images:read", "images:write"}


def test_empty_tenant_omits_the_claim():
    _, out, _ = run_cli(["token", "--tenant", ""])
    assert "tenant" not in _decode(out.strip())


def test_negative_ttl_gives_an_expired_token():
    _, out, _ = run_cli(["token", "--ttl", "-60"])
    with pytest.raises(jwt.ExpiredSignatureError):
        _decode(out.strip())


def test_secret_comes_from_flag_then_env_then_the_local_default(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "from-env-secret-0123456789abcdef0123")
    _, out, _ = run_cli(["token"])
    assert _decode(out.strip(), "from-env-secret-0123456789abcdef0123")["tenant"] == "dev"
    _, out, _ = run_cli(["token", "--secret", "from-flag-secret-0123456789abcdef012"])
    assert _decode(out.strip(), "from-flag-secret-0123456789abcdef012")


def test_claims_override_and_extend():
    _, out, _ = run_cli(["token", "--claim", "scope=admin", "--claim", "aud=x"])
    claims = _decode(out.strip(), options={"verify_aud": False})
    assert claims["scope"] == "admin" and claims["aud"] == "x"


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "--tenant", "a/b"],
        ["token", "--tenant", "T#1"],
        ["token", "--tenant", "x" * 65],
        ["token", "--tenant", "acme corp"],
        ["token", "--claim", "tenant=a/b"],
        ["token", "--claim", "tenant=42"],
        ["token", "--tenant", "", "--claim", "custom:tenant=a#b"],
    ],
    ids=["slash", "hash", "65 chars", "space", "claim slash", "claim number", "custom claim hash"],
)
def test_token_refuses_a_tenant_the_api_would_refuse(argv):
    code, out, err = run_cli(argv)
    assert code == 2 and out == ""
    assert "tenant" in err and "[A-Za-z0-9_-]" in err


def test_token_refuses_a_ttl_above_the_24_hour_maximum():
    code, out, err = run_cli(["token", "--ttl", "86401"])
    assert code == 2 and out == ""
    assert "86400" in err
    code, out, _ = run_cli(["token", "--claim", "exp=99999999999"])
    assert code == 2 and out == ""
    # exactly 24 h (the local stack's dev token) is allowed and accepted
    code, out, _ = run_cli(["token", "--ttl", "86400", "--tenant", "x" * 64])
    assert code == 0
    assert TokenVerifier(cli.LOCAL_DEV_SECRET).verify(out.strip()).tenant == "x" * 64


# ------------------------------------------------------------------ files


def test_folders_expand_recursively_to_image_files_only(photos):
    found = expand_paths([photos])
    assert [p.relative_to(photos).as_posix() for p in found] == ["a.jpg", "b.png", "nested/c.webp"]


def test_explicit_files_are_kept_and_repeats_dropped(photos):
    found = expand_paths([photos / "notes.txt", photos, photos / "a.jpg"])
    assert [p.name for p in found] == ["notes.txt", "a.jpg", "b.png", "c.webp"]


def test_missing_path_is_a_usage_error(tmp_path):
    code, _, err = run_cli(["upload", str(tmp_path / "nope"), "--api", API, "--token", "t"], FakeImgdrop())
    assert code == 2 and "no such file" in err


def test_content_types():
    assert content_type_of(Path("x.JPG")) == "image/jpeg"
    assert content_type_of(Path("x.heic")) == "image/heic"
    assert content_type_of(Path("x.avif")) == "image/avif"
    assert content_type_of(Path("x.unknownext")) == "application/octet-stream"


def test_multipart_body_puts_fields_first_and_the_file_last_and_reports_progress(tmp_path):
    f = tmp_path / "pic.png"
    f.write_bytes(b"\x89PNG" + bytes(range(256)) * 1000)
    seen: list[int] = []
    body = MultipartFile(
        {"key": "uploads/t/1", "policy": "p"}, f, content_type="image/png", on_progress=seen.append
    )
    data = b"".join(iter(body))
    assert len(data) == len(body) == int(body.headers["Content-Length"])
    assert sum(seen) == len(data)
    assert (
        data.index(b'name="key"')
        < data.index(b'name="policy"')
        < data.index(b'name="file"; filename="pic.png"')
    )
    assert data.endswith(f"\r\n--{body.boundary}--\r\n".encode())
    assert f.read_bytes() in data


# ------------------------------------------------------------------ upload


def test_upload_hashes_first_sends_bytes_and_prints_json(photos):
    fake = FakeImgdrop()
    code, out, _ = run_cli(
        [
            "upload",
            str(photos),
            "--api",
            API,
            "--token",
            "tok",
            "--json",
            "--album",
            "al1",
            "--tag",
            "t1",
            "--profile",
            "flickr",
        ],
        fake,
    )
    assert code == 0
    (batch,) = fake.upload_batches
    assert [i["filename"] for i in batch] == ["a.jpg", "b.png", "c.webp"]
    assert batch[0]["sha256"] == hashlib.sha256((photos / "a.jpg").read_bytes()).hexdigest()
    assert batch[0]["size"] == (photos / "a.jpg").stat().st_size
    assert batch[0]["content_type"] == "image/jpeg"
    assert batch[0]["album_id"] == "al1" and batch[0]["tags"] == ["t1"] and batch[0]["profile"] == "flickr"
    assert fake.s3_posts == 3
    assert (photos / "b.png").read_bytes() in fake.s3_bodies["uploads/t/img002"]
    images = json.loads(out)
    assert [i["id"] for i in images] == ["img001", "img002", "img003"]
    assert images[0]["path"].endswith("a.jpg")
    auth = fake.calls[0][2]["headers"]["Authorization"]
    assert auth == "Bearer tok"


def test_duplicates_are_answered_before_bytes_are_sent(photos):
    fake = FakeImgdrop()
    fake.existing[hashlib.sha256((photos / "a.jpg").read_bytes()).hexdigest()] = "old1"
    code, out, _ = run_cli(["upload", str(photos), "--api", API, "--token", "t", "--json"], fake)
    assert code == 0  # a duplicate is an answer, not a failure
    images = json.loads(out)
    assert images[0]["status"] == "duplicate" and images[0]["duplicate_of"] == "old1"
    assert fake.s3_posts == 2
    assert not any(b"jpeg-a" in body for body in fake.s3_bodies.values())


def test_a_refused_item_makes_the_exit_code_1(photos):
    fake = FakeImgdrop()
    fake.reject["b.png"] = {"status": "400", "code": "unsupported_content_type", "title": "no"}
    code, out, _ = run_cli(["upload", str(photos), "--api", API, "--token", "t", "--json"], fake)
    assert code == 1
    images = json.loads(out)
    assert images[1]["error"]["code"] == "unsupported_content_type"
    assert [i.get("status") for i in (images[0], images[2])] == ["ready", "ready"]
    assert fake.s3_posts == 2


def test_wait_polls_until_settled_and_a_failed_image_exits_1(photos):
    fake = FakeImgdrop()
    fake.statuses = {
        "img001": ["pending", "processing", "ready"],
        "img002": ["processing", "failed"],
        "img003": ["pending", "ready"],
    }
    code, out, _ = run_cli(["upload", str(photos), "--api", API, "--token", "t", "--json", "--wait"], fake)
    assert code == 1
    assert [i["status"] for i in json.loads(out)] == ["ready", "failed", "ready"]
    gets = [url for method, url, _ in fake.calls if method == "GET"]
    assert gets.count(f"{API}/v1/images/img001") == 3


def test_wait_gives_up_after_the_timeout(photos):
    fake = FakeImgdrop()
    fake.statuses = {"img001": ["processing"]}
    code, out, _ = run_cli(
        [
            "upload",
            str(photos / "a.jpg"),
            "--api",
            API,
            "--token",
            "t",
            "--json",
            "--wait",
            "--wait-timeout",
            "0",
        ],
        fake,
    )
    assert code == 1
    assert json.loads(out)[0]["error"]["code"] == "wait_timeout"


def test_storage_refusal_is_an_item_error(photos):
    fake = FakeImgdrop()
    fake.s3_status = 403
    code, out, _ = run_cli(["upload", str(photos / "a.jpg"), "--api", API, "--token", "t", "--json"], fake)
    assert code == 1
    error = json.loads(out)[0]["error"]
    assert error["code"] == "upload_failed" and "AccessDenied" in error["title"]


def test_more_than_100_files_go_in_batches_of_100(tmp_path):
    for i in range(150):
        (tmp_path / f"{i:03d}.jpg").write_bytes(b"jpeg %d" % i)
    fake = FakeImgdrop()
    code, out, _ = run_cli(
        ["upload", str(tmp_path), "--api", API, "--token", "t", "--json", "--concurrency", "8"], fake
    )
    assert code == 0
    assert [len(b) for b in fake.upload_batches] == [100, 50]
    assert len(json.loads(out)) == 150 and fake.s3_posts == 150


def test_a_refused_token_exits_1_with_the_error_code(photos):
    fake = FakeImgdrop()
    fake.uploads_status = 401
    fake.uploads_error = {"status": "401", "code": "token_expired", "title": "The token has expired."}
    code, out, err = run_cli(["upload", str(photos), "--api", API, "--token", "t"], fake)
    assert code == 1 and "token_expired" in err and out == ""
    assert fake.s3_posts == 0


def test_no_token_for_a_remote_api_is_a_usage_error(photos):
    code, _, err = run_cli(["upload", str(photos), "--api", "https://imgdrop.example.com"], FakeImgdrop())
    assert code == 2 and "IMGDROP_TOKEN" in err


def test_local_default_api_gets_a_minted_dev_token(photos, monkeypatch):
    # An API that is not the local default needs a token...
    monkeypatch.setenv("IMGDROP_API", API)
    assert run_cli(["upload", str(photos)], FakeImgdrop())[0] == 2
    # ...while for the local default one is minted that the local stack accepts.
    assert cli.is_local_default("http://127.0.0.1:3000") and cli.is_local_default("http://localhost:3000/")
    args = cli.build_parser().parse_args(["upload", "x", "--api", "http://127.0.0.1:3000"])
    _, token = cli.resolve_api_and_token(args)
    assert TokenVerifier(cli.LOCAL_DEV_SECRET).verify(token).tenant == "dev"


def test_env_supplies_api_and_token(photos, monkeypatch):
    monkeypatch.setenv("IMGDROP_API", API)
    monkeypatch.setenv("IMGDROP_TOKEN", "envtok")
    fake = FakeImgdrop()
    assert run_cli(["upload", str(photos / "a.jpg"), "--json"], fake)[0] == 0
    assert fake.calls[0][2]["headers"]["Authorization"] == "Bearer envtok"


def test_human_output_is_a_table(photos):
    code, out, _ = run_cli(["upload", str(photos), "--api", API, "--token", "t"], FakeImgdrop())
    assert code == 0
    assert "img001" in out and "ready" in out and "4×3" in out


# ------------------------------------------------------------------ get


def test_get_prints_the_image_and_404_exits_1():
    fake = FakeImgdrop()
    fake.images["img9"] = {"id": "img9"}
    code, out, _ = run_cli(["get", "img9", "--api", API, "--token", "t"], fake)
    assert code == 0 and json.loads(out)["id"] == "img9"
    code, out, err = run_cli(["get", "nope", "--api", API, "--token", "t"], fake)
    assert code == 1 and "not_found" in err


CDN = "http://cdn.test"
SIG = "Expires=1796097600&Signature=abc~def_&Key-Pair-Id=KTEST"


def _delivered(image_id: str, *, signed: bool) -> dict:
    """An image object as the API answers it once ready (the default profile, two variants)."""
    base = f"{CDN}/{'images' if signed else 'public'}/t/{image_id}/r1"

    def url(key: str) -> str:
        return f"{base}/{key}?{SIG}" if signed else f"{base}/{key}"

    def variant(name: str, width: int, height: int, sizes: dict[str, int]) -> dict:
        ext = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
        formats = {fmt: {"url": url(f"{name}.{ext[fmt]}"), "bytes": n} for fmt, n in sizes.items()}
        return {"url": formats["jpeg"]["url"], "width": width, "height": height, "bytes": sizes["jpeg"],
                "format": "jpeg", "formats": formats, "auto_url": url(f"{name}.auto.{'-'.join(
                    ext[f] for f in reversed(list(sizes)))}")}

    variants = {
        "large": variant("large", 2048, 1536, {"jpeg": 204800, "webp": 81920}),
        "thumb": variant("thumb", 256, 256, {"jpeg": 9000, "webp": 4000, "avif": 3000}),
    }
    return {
        "id": image_id, "status": "ready", "privacy": "private" if signed else "public", "width": 4000,
        "height": 3000, "format": "jpeg", "variants": variants,
        "srcset": {"jpeg": f"{variants['large']['url']} 2048w"},
        "original": {"url": f"{CDN}/images/t/{image_id}/r1/original.jpg?{SIG}", "width": 4000,
                     "height": 3000, "bytes": 3 * 1024 * 1024, "format": "jpeg"},
    }


def test_get_urls_prints_each_variants_size_and_format_urls_the_auto_url_and_the_original():
    fake = FakeImgdrop()
    fake.images["img7"] = image = _delivered("img7", signed=False)
    code, out, err = run_cli(["get", "img7", "--urls", "--api", API, "--token", "t"], fake)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "img7 · ready · public · 4000×3000 jpeg"
    large = image["variants"]["large"]
    # one line per format: the variant's name and size on its first, the fallback starred
    assert re.fullmatch(r"large\s+2048×1536\s+jpeg\*\s+200\.0 KB\s+" + re.escape(large["url"]), lines[1])
    assert re.fullmatch(r"\s+webp\s+80\.0 KB\s+" + re.escape(large["formats"]["webp"]["url"]), lines[2])
    assert re.fullmatch(r"\s+auto\s+" + re.escape(large["auto_url"]), lines[3])
    assert lines[4].startswith("thumb ") and "256×256" in lines[4]
    assert [line.split()[0] for line in lines[5:7]] == ["webp", "avif"]
    assert lines[7].split() == ["auto", image["variants"]["thumb"]["auto_url"]]
    assert re.fullmatch(r"original\s+4000×3000\s+jpeg\s+3\.0 MB\s+" + re.escape(image["original"]["url"]),
                        lines[8])
    # the columns line up: every URL starts at the same column
    assert len({line.index("http://") for line in lines[1:9]}) == 1
    assert "variant URLs: unsigned" in out
    assert "original URL: signed, valid until 2026-12-01 04:00 UTC" in out
    assert "{" not in out  # not JSON


def test_get_urls_of_a_private_image_says_the_variants_are_signed_and_until_when():
    fake = FakeImgdrop()
    fake.images["img8"] = image = _delivered("img8", signed=True)
    code, out, _ = run_cli(["get", "img8", "--urls", "--api", API, "--token", "t"], fake)
    assert code == 0
    assert out.splitlines()[0].startswith("img8 · ready · private ·")
    for variant in image["variants"].values():
        assert variant["auto_url"] in out
        assert all(f["url"] in out for f in variant["formats"].values())
    assert "variant URLs: signed, valid until 2026-12-01 04:00 UTC" in out


def test_get_urls_before_the_image_is_ready_says_so_and_a_failed_one_exits_1():
    fake = FakeImgdrop()
    fake.images["img5"] = {"id": "img5", "variants": {}, "srcset": {}, "original": None}
    fake.statuses["img5"] = ["processing", "failed"]
    code, out, _ = run_cli(["get", "img5", "--urls", "--api", API, "--token", "t"], fake)
    assert code == 0
    assert out.splitlines() == ["img5 · processing · public", "no delivery URLs (status processing: they "
                                "come once the image is ready)"]
    code, out, _ = run_cli(["get", "img5", "--urls", "--api", API, "--token", "t"], fake)
    assert code == 1 and "failed" in out


def test_get_without_urls_still_prints_the_whole_image_object_as_json():
    fake = FakeImgdrop()
    fake.images["img7"] = image = _delivered("img7", signed=False)
    code, out, _ = run_cli(["get", "img7", "--api", API, "--token", "t"], fake)
    assert code == 0 and json.loads(out) == image


def test_api_paths_are_under_v1():
    assert Api("http://x/", "t")._url("/images/1") == "http://x/v1/images/1"


def test_a_batch_is_asked_for_only_once_the_one_two_before_is_sent(tmp_path):
    # Presigned POSTs expire: at most two batches of them may wait at a time.
    for i in range(250):
        (tmp_path / f"{i:03d}.jpg").write_bytes(b"jpeg %d" % i)
    fake = FakeImgdrop()
    code, _, _ = run_cli(["upload", str(tmp_path), "--api", API, "--token", "t", "--json"], fake)
    assert code == 0
    batch_asks = [i for i, (method, url, _) in enumerate(fake.calls) if url.endswith("/v1/uploads")]
    assert len(batch_asks) == 3
    sent = [i for i, (_, url, _) in enumerate(fake.calls) if url.startswith(S3)]
    assert len(sent) == 250
    assert all(fake.sent_at[f"uploads/t/img{n:03d}"] < batch_asks[2] for n in range(1, 101))


# ------------------------------------------------------------------ multipart: planning


def test_parts_are_cut_at_the_part_size_with_a_shorter_last_one():
    parts = plan_parts(12 * MiB + 5, 5 * MiB)
    assert [p.number for p in parts] == [1, 2, 3]
    assert [p.offset for p in parts] == [0, 5 * MiB, 10 * MiB]
    assert [p.size for p in parts] == [5 * MiB, 5 * MiB, 2 * MiB + 5]
    assert plan_parts(10 * MiB, 5 * MiB)[-1] == Part(2, 5 * MiB, 5 * MiB)
    assert plan_parts(0, 5 * MiB) == [Part(1, 0, 0)]  # S3 takes one empty part


def test_the_part_size_is_at_least_5_mib_and_grows_to_fit_one_list_page():
    assert choose_part_size(300 * MiB, None) == 8 * MiB  # no advice: 8 MiB
    assert choose_part_size(300 * MiB, 16 * MiB) == 16 * MiB  # the API's advice
    assert choose_part_size(300 * MiB, 1 * MiB) == 5 * MiB  # S3's minimum
    # 20 GiB in 8 MiB parts would be 2560 parts: ListParts pages at 1000 and a presigned GET
    # cannot turn the page, so the part grows to keep every part on one page
    size = 20 * 1024 * MiB
    part = choose_part_size(size, 8 * MiB)
    assert len(plan_parts(size, part)) <= 1000


def test_list_parts_and_complete_speak_s3_xml():
    listed = parse_list_parts(
        "<ListPartsResult><Part><PartNumber>2</PartNumber><ETag>&quot;bb&quot;</ETag><Size>7</Size></Part>"
        '<Part><PartNumber>1</PartNumber><ETag>"aa"</ETag><Size>5</Size></Part></ListPartsResult>'
    )
    assert listed == {1: ('"aa"', 5), 2: ('"bb"', 7)}
    body = complete_body({2: '"bb"', 1: '"aa"'}).decode()
    assert body == (
        '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"aa"</ETag></Part>'
        '<Part><PartNumber>2</PartNumber><ETag>"bb"</ETag></Part></CompleteMultipartUpload>'
    )


def test_items_ask_for_multipart_above_the_threshold_or_when_forced(tmp_path):
    small, big = tmp_path / "s.jpg", tmp_path / "b.jpg"
    small.write_bytes(b"x" * 10)
    big.write_bytes(b"x" * 100)
    options = UploadOptions(multipart_threshold=50)
    assert "multipart" not in item_for(describe(small), options)
    assert item_for(describe(big), options)["multipart"] is True
    assert item_for(describe(small), UploadOptions(multipart=True))["multipart"] is True


def test_multipart_arguments():
    args = cli.build_parser().parse_args(["upload", "a.tif"])
    assert (args.parallel, args.multipart, args.part_size, args.resume) == (4, False, None, False)
    args = cli.build_parser().parse_args(
        ["upload", "a.tif", "--parallel", "8", "--multipart", "--part-size", "16", "--resume"]
    )
    assert (args.parallel, args.multipart, args.part_size, args.resume) == (8, True, 16 * MiB, True)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["upload", "a.tif", "--part-size", "4"])  # S3's minimum is 5 MiB


# ------------------------------------------------------------------ multipart: the resume file


def test_the_resume_file_sits_in_the_xdg_config_home_and_keys_on_the_files_state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_state_path() == tmp_path / "xdg" / "imgdrop" / "uploads.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert default_state_path() == Path.home() / ".config" / "imgdrop" / "uploads.json"

    store = ResumeStore(tmp_path / "state" / "uploads.json")
    path = tmp_path / "big.tif"
    path.write_bytes(b"a" * 1000)
    local = describe(path)
    assert store.get(local) is None and not store.path.exists()  # reading creates nothing
    store.put(local, {"image_id": "img1", "upload_id": "u1", "part_size": 5 * MiB})
    assert store.get(local)["upload_id"] == "u1"
    on_disk = json.loads(store.path.read_text())
    assert on_disk["version"] == 1 and len(on_disk["uploads"]) == 1
    assert (store.path.stat().st_mode & 0o777) == 0o600
    (key,) = on_disk["uploads"]
    assert str(path.resolve()) in key and local.sha256 in key

    # A file that changed (size, mtime, bytes) is not the one that was interrupted
    path.write_bytes(b"b" * 1000)
    assert store.get(describe(path)) is None
    store.drop(local)
    assert store.entries() == {}


def test_old_resume_records_are_pruned(tmp_path):
    store = ResumeStore(tmp_path / "uploads.json")
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    store.put(describe(a), {"upload_id": "old", "created_at": "2000-01-01T00:00:00Z"})
    store.put(describe(b), {"upload_id": "new"})
    assert [e["upload_id"] for e in store.entries().values()] == ["new"]


# ------------------------------------------------------------------ multipart: uploads


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """12 MiB of distinct bytes: three parts of 5 MiB (the last 2 MiB)."""
    path = tmp_path / "big.tif"
    path.write_bytes(bytes(range(256)) * (12 * MiB // 256))
    return path


MP = ["--api", API, "--token", "t", "--json", "--multipart", "--part-size", "5"]


def test_a_multipart_upload_sends_every_part_in_parallel_and_completes(big):
    fake = FakeImgdrop()
    code, out, err = run_cli(["upload", str(big), *MP, "--parallel", "3"], fake)
    assert code == 0, err
    (batch,) = fake.upload_batches
    assert batch[0]["multipart"] is True
    assert sorted(fake.puts()) == [1, 2, 3]
    assert fake.objects["uploads/t/img001"] == big.read_bytes()
    methods = [body["method"] for _, body in fake.sign_calls]
    assert methods[0] == "POST" and methods[-1] == "POST" and methods.count("PUT") == 3
    assert all(body.get("upload_id") == "up1" for _, body in fake.sign_calls[1:])
    assert sorted(body["part_number"] for _, body in fake.sign_calls if body["method"] == "PUT") == [1, 2, 3]
    assert json.loads(out)[0]["id"] == "img001"
    assert ResumeStore().entries() == {}  # done: nothing left to resume


def test_an_interrupted_upload_leaves_a_record_and_resume_sends_only_the_missing_parts(big, monkeypatch):
    fake = FakeImgdrop()
    monkeypatch.setenv("IMGDROP_STOP_AFTER_PARTS", "1")  # the test hook: stop as Ctrl-C would
    code, out, err = run_cli(["upload", str(big), *MP, "--parallel", "1"], fake)
    assert code == 130, err
    assert "--resume" in err
    assert json.loads(out)[0]["error"]["code"] == "interrupted"
    assert fake.puts() == [1]
    (entry,) = ResumeStore().entries().values()
    assert (entry["image_id"], entry["upload_id"], entry["key"]) == ("img001", "up1", "uploads/t/img001")
    assert entry["part_size"] == 5 * MiB

    # Without --resume the CLI says that it could continue
    monkeypatch.delenv("IMGDROP_STOP_AFTER_PARTS")
    calls_before, puts_before = len(fake.calls), len(fake.puts())
    code, out, err = run_cli(["upload", str(big), *MP, "--resume"], fake)
    assert code == 0, err
    assert len(fake.upload_batches) == 1  # no new POST /uploads
    assert sorted(fake.puts()[puts_before:]) == [2, 3]  # part 1 is not sent again
    resumed = [m for m, url, _ in fake.calls[calls_before:] if url.startswith(S3 + "/")]
    assert resumed[0] == "GET"  # ListParts first
    assert fake.objects["uploads/t/img001"] == big.read_bytes()
    outcome = json.loads(out)[0]
    assert outcome["id"] == "img001"
    assert outcome["transfer"] == {
        "method": "multipart", "upload_id": "up1", "part_size": 5 * MiB, "parts": 3, "sent": [2, 3], "reused": [1]
    }
    assert ResumeStore().entries() == {}


def test_a_record_exists_but_without_resume_a_new_upload_starts_and_says_so(big, monkeypatch):
    fake = FakeImgdrop()
    monkeypatch.setenv("IMGDROP_STOP_AFTER_PARTS", "1")
    run_cli(["upload", str(big), *MP, "--parallel", "1"], fake)
    monkeypatch.delenv("IMGDROP_STOP_AFTER_PARTS")
    code, _, err = run_cli(["upload", str(big), *MP], fake)
    assert code == 0
    assert "interrupted upload" in err and "--resume" in err
    assert len(fake.upload_batches) == 2


def test_a_failing_part_is_retried_with_backoff(big, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr("time.sleep", sleeps.append)
    fake = FakeImgdrop()
    fake.part_failures[2] = 2
    code, _, err = run_cli(["upload", str(big), *MP, "--parallel", "1"], fake)
    assert code == 0, err
    assert fake.puts() == [1, 2, 2, 2, 3]
    assert sleeps[:2] == [1.0, 2.0]
    # each attempt is signed afresh (a presigned URL may have expired meanwhile)
    assert [b.get("part_number") for _, b in fake.sign_calls if b["method"] == "PUT"] == [1, 2, 2, 2, 3]
    assert fake.objects["uploads/t/img001"] == big.read_bytes()


def test_a_part_failing_four_times_fails_the_file_and_keeps_it_resumable(big, monkeypatch):
    fake = FakeImgdrop()
    fake.part_failures[2] = 4
    code, out, _ = run_cli(["upload", str(big), *MP, "--parallel", "1"], fake)
    assert code == 1
    outcome = json.loads(out)[0]
    assert outcome["error"]["code"] == "upload_failed"
    assert "SlowDown" in outcome["error"]["title"] and "--resume" in outcome["error"]["title"]
    assert fake.puts().count(2) == 4  # the first try and 3 retries
    assert 3 not in fake.puts()
    assert len(ResumeStore().entries()) == 1

    code, _, err = run_cli(["upload", str(big), *MP, "--resume"], fake)
    assert code == 0, err
    assert fake.objects["uploads/t/img001"] == big.read_bytes()


def test_resuming_an_upload_that_is_gone_starts_a_new_one(big, monkeypatch):
    fake = FakeImgdrop()
    monkeypatch.setenv("IMGDROP_STOP_AFTER_PARTS", "1")
    run_cli(["upload", str(big), *MP, "--parallel", "1"], fake)
    monkeypatch.delenv("IMGDROP_STOP_AFTER_PARTS")
    fake.gone.add("up1")  # aborted or expired meanwhile
    code, out, err = run_cli(["upload", str(big), *MP, "--resume"], fake)
    assert code == 0, err
    assert len(fake.upload_batches) == 2
    assert json.loads(out)[0]["id"] == "img002"
    assert fake.objects["uploads/t/img002"] == big.read_bytes()
    assert ResumeStore().entries() == {}


def test_resuming_an_image_that_settled_meanwhile_just_reports_it(big, monkeypatch):
    fake = FakeImgdrop()
    monkeypatch.setenv("IMGDROP_STOP_AFTER_PARTS", "1")
    run_cli(["upload", str(big), *MP, "--parallel", "1"], fake)
    monkeypatch.delenv("IMGDROP_STOP_AFTER_PARTS")
    fake.sign_status = 409
    code, out, _ = run_cli(["upload", str(big), *MP, "--resume"], fake)
    assert code == 0
    assert json.loads(out)[0]["id"] == "img001"
    assert ResumeStore().entries() == {}


def test_small_files_still_go_as_one_presigned_post(photos):
    fake = FakeImgdrop()
    code, _, _ = run_cli(["upload", str(photos), "--api", API, "--token", "t", "--json"], fake)
    assert code == 0
    assert all("multipart" not in item for item in fake.upload_batches[0])
    assert fake.s3_posts == 3 and fake.sign_calls == []


def test_resuming_past_the_upload_window_starts_a_new_upload(big, monkeypatch):
    fake = FakeImgdrop()
    monkeypatch.setenv("IMGDROP_STOP_AFTER_PARTS", "1")
    run_cli(["upload", str(big), *MP, "--parallel", "1"], fake)
    monkeypatch.delenv("IMGDROP_STOP_AFTER_PARTS")
    fake.sign_status, fake.sign_code = 409, "upload_expired"
    real_sign = fake._sign

    def sign_once_expired(image_id, body):
        answer = real_sign(image_id, body)
        fake.sign_status, fake.sign_code = 200, ""  # the new image signs normally
        return answer

    fake._sign = sign_once_expired
    code, out, err = run_cli(["upload", str(big), *MP, "--resume"], fake)
    assert code == 0, err
    assert json.loads(out)[0]["id"] == "img002"
    assert fake.objects["uploads/t/img002"] == big.read_bytes()
