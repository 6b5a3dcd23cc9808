"""EXIF, GPS, taken_at and camera from the source; none of it in any variant."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageCms, TiffImagePlugin
from sample_images import all_encodings, decode, encode, quadrants

from imgdrop.pipeline import render

R = TiffImagePlugin.IFDRational
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>XMP-SECRET</dc:creator>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _camera_exif(offset: str | None = "+02:00") -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif[0x0131] = "Firmware 1.8.1"
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2024:05:01 12:34:56"
    ifd[0x9291] = "25"
    if offset:
        ifd[0x9011] = offset
    ifd[0x829A] = R(1, 250)  # ExposureTime
    ifd[0x829D] = R(28, 10)  # FNumber
    ifd[0x8827] = 400  # ISO
    ifd[0x927C] = b"\x00\x01\x02MAKERNOTE-SECRET\xff"  # MakerNote: a binary blob
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (R(48, 1), R(51, 1), R(2952, 100))
    gps[3] = "W"
    gps[4] = (R(2, 1), R(17, 1), R(402, 10))
    gps[5] = b"\x00"
    gps[6] = R(3512, 100)
    return exif


@pytest.fixture(scope="module")
def camera_jpeg(china) -> bytes:
    return encode(
        decode(china), "JPEG", quality=92, exif=_camera_exif().tobytes(), comment=b"COMMENT-SECRET", xmp=XMP
    )


def test_source_really_carries_the_metadata(camera_jpeg):
    src = decode(camera_jpeg)
    assert src.info["comment"] == b"COMMENT-SECRET"
    assert b"XMP-SECRET" in camera_jpeg and b"MAKERNOTE-SECRET" in camera_jpeg
    assert src.getexif().get_ifd(0x8825)[1] == "N"


def test_exif_gps_taken_at_camera(camera_jpeg):
    r = render(camera_jpeg, "default")
    assert r.camera == {"make": "Canon", "model": "Canon EOS R5"}
    assert r.taken_at == "2024-05-01T12:34:56.250+02:00"
    assert r.gps == {
        "lat": pytest.approx(48.8582, abs=1e-6),
        "lon": pytest.approx(-2.2945, abs=1e-6),
        "alt": 35.12,
    }
    assert r.exif["Make"] == "Canon" and r.exif["Software"] == "Firmware 1.8.1"
    assert r.exif["ExposureTime"] == pytest.approx(0.004)
    assert r.exif["FNumber"] == pytest.approx(2.8)
    assert r.exif["ISOSpeedRatings"] == 400
    assert r.exif["DateTimeOriginal"] == "2024:05:01 12:34:56"
    assert "MakerNote" not in r.exif and "GPSInfo" not in r.exif
    assert not any(k.startswith("GPS") for k in r.exif)
    assert json.loads(json.dumps(r.exif)) == r.exif  # JSON-clean: no bytes, no rationals


def test_taken_at_without_offset_is_local_time(china):
    data = encode(decode(china), "JPEG", exif=_camera_exif(offset=None).tobytes())
    assert render(data, "avatar").taken_at == "2024-05-01T12:34:56.250"


def test_no_exif_gives_empty_values(china):
    r = render(china, "avatar")
    assert (r.exif, r.gps, r.taken_at, r.camera) == ({}, None, None, None)


def test_broken_gps_is_ignored(china):
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (R(1, 0), R(0, 0), R(0, 0))
    data = encode(decode(china), "JPEG", exif=exif.tobytes())
    assert render(data, "avatar").gps is None


@pytest.mark.parametrize("profile", ["default", "flickr"])
def test_variants_keep_no_metadata_only_srgb(camera_jpeg, profile):
    r = render(camera_jpeg, profile)
    for name, v in all_encodings(r):
        for secret in (
            b"COMMENT-SECRET",
            b"XMP-SECRET",
            b"MAKERNOTE-SECRET",
            b"Canon",
            b"Exif\x00\x00",
            b"http://ns.adobe.com/xap/1.0/",
            b"Photoshop 3.0",
        ):
            assert secret not in v.data, (name, secret)
        out = decode(v.data)
        assert "comment" not in out.info and "exif" not in out.info and "xmp" not in out.info, name
        assert not out.getexif()
        icc = ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"]))
        assert ImageCms.getProfileDescription(icc).strip().startswith("sRGB")


def test_png_and_webp_variants_are_stripped_too():
    exif = _camera_exif()
    img = quadrants(80, 60).convert("RGBA")
    img.putpixel((0, 0), (0, 0, 0, 0))
    png = encode(img, "PNG", exif=exif.tobytes(), pnginfo=None)
    webp = encode(img, "WEBP", exif=exif.tobytes(), xmp=XMP, lossless=True)
    for data in (png, webp):
        r = render(data, "default")
        assert r.camera == {"make": "Canon", "model": "Canon EOS R5"}
        assert r.gps is not None
        for _, v in all_encodings(r):
            assert b"Canon" not in v.data and b"XMP-SECRET" not in v.data
            assert "exif" not in decode(v.data).info and "xmp" not in decode(v.data).info


def test_result_summary_is_json(camera_jpeg):
    summary = render(camera_jpeg, "album").summary()
    text = json.dumps(summary)
    r = render(camera_jpeg, "album")
    mini = json.loads(text)["variants"]["mini"]
    assert mini == {
        "width": 100,
        "height": 100,
        "format": "jpeg",
        "bytes": r.variants["mini"][0].bytes,
        "formats": {e.format: e.bytes for e in r.variants["mini"]},
    }
    assert list(mini["formats"]) == ["jpeg", "webp", "avif"]
    assert list(json.loads(text)["variants"]["full"]["formats"]) == ["jpeg", "webp"]
    assert summary["sha256"] and summary["gps"]["lat"] > 48
