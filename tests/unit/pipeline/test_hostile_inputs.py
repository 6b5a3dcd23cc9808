"""Strange but small files: a bad EXIF tag, metadata padding, an AVIF sequence. Each renders or
is refused with a stable code, never a crash, and padding is refused before Pillow or libvips
parse it (so the memory tests need no big files: the caps are checked on small ones)."""

from __future__ import annotations

import importlib
import struct
import time

import pytest
from PIL import Image
from sample_images import decode, encode, fallback, quadrants

from imgdrop.errors import ImageRejected
from imgdrop.pipeline import render

# the module (imgdrop.pipeline.sniff is also the name of its function)
sniff = importlib.import_module("imgdrop.pipeline.sniff")

_APP15 = b"\xff\xef" + struct.pack(">H", 65535) + b"Z" * 65533  # a full-size APP15 segment


def _ifd(entries: list[tuple[int, int, bytes]], at: int) -> bytes:
    """A little-endian IFD at offset ``at`` of (tag, type, value) entries, the values longer
    than 4 bytes right after it."""
    data_at = at + 2 + 12 * len(entries) + 4
    body, extra = b"", b""
    for tag, kind, value in sorted(entries):
        count = len(value) if kind == 2 else 1
        if len(value) <= 4:
            body += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            body += struct.pack("<HHII", tag, kind, count, data_at + len(extra))
            extra += value + b"\0" * (len(value) % 2)
    return struct.pack("<H", len(entries)) + body + struct.pack("<I", 0) + extra


def _exif(exif_tags: dict[int, bytes], ifd0_tags: dict[int, bytes] | None = None) -> bytes:
    """EXIF whose tags are ASCII (type 2) of these very bytes: the Exif IFD holds
    DateTimeOriginal 2021:05:06 07:08:09 unless ``exif_tags`` says otherwise. (Pillow would
    write bytes as UNDEFINED, and text as ASCII with "?" for anything else.)"""
    exif_entries = [
        (tag, 2, value + b"\0") for tag, value in {0x9003: b"2021:05:06 07:08:09", **exif_tags}.items()
    ]
    ifd0_entries = [(tag, 2, value + b"\0") for tag, value in (ifd0_tags or {}).items()]
    exif_at = 8 + len(_ifd([*ifd0_entries, (0x8769, 4, bytes(4))], 8))
    ifd0 = _ifd([*ifd0_entries, (0x8769, 4, struct.pack("<I", exif_at))], 8)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd0 + _ifd(exif_entries, exif_at)


def _refused(data: bytes | str, **kw) -> tuple[str, float]:
    start = time.perf_counter()
    with pytest.raises(ImageRejected) as err:
        render(data, "avatar", **kw)
    return err.value.code, time.perf_counter() - start


@pytest.fixture
def pillow_opens(monkeypatch) -> list:
    """What Pillow is asked to open, from now on: padding is refused before it parses a byte."""
    opened: list = []
    real_open = Image.open

    def spy(fp, *args, **kwargs):
        opened.append(fp)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    return opened


def _gif_with(extension: bytes, img: Image.Image | None = None) -> bytes:
    """A small GIF with ``extension`` right after its header and global colour table."""
    data = encode((img or quadrants(32, 32)).convert("P"), "GIF")
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return data[:pos] + extension + data[pos:]


def _sub_blocks(payload: bytes, size: int) -> bytes:
    return b"".join(
        bytes([len(c)]) + c for c in (payload[i : i + size] for i in range(0, len(payload), size))
    )


# ---------------------------------------------------------------- EXIF dates


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("subsec", [b"\xb2", b"\xb9\xb2", b"2\xb3", b"-5", b"1 2"])
def test_subsec_that_is_no_ascii_number_is_ignored(fmt, subsec):
    # Given a valid DateTimeOriginal and a SubSecTimeOriginal of "²" (Latin-1 superscript two:
    # str.isdigit() says yes, int() says no)
    data = encode(quadrants(), fmt, exif=_exif({0x9291: subsec}))
    assert decode(data).getexif().get_ifd(0x8769)[0x9291] == subsec.decode("latin-1")
    # When rendered, Then the image renders and the date keeps only its well-formed part
    assert render(data, "avatar").taken_at == "2021-05-06T07:08:09"


@pytest.mark.parametrize(
    "offset", [b"+0\xb2:00", b"+02:0\xb2", b"+02-00", b"02:00+", b"+99:00", b"+02:60", b"Z"]
)
def test_malformed_offset_is_left_out_of_taken_at(offset):
    data = encode(quadrants(), "JPEG", exif=_exif({0x9011: offset}))
    assert render(data, "avatar").taken_at == "2021-05-06T07:08:09"


def test_well_formed_subsec_and_offset_are_kept():
    data = encode(quadrants(), "JPEG", exif=_exif({0x9291: b"042", 0x9011: b"-09:30"}))
    assert render(data, "avatar").taken_at == "2021-05-06T07:08:09.042-09:30"


@pytest.mark.parametrize("date", [b"2021:05:0\xb2 07:08:09", b"2021:13:06 07:08:09", b"2021:05:06"])
def test_malformed_date_falls_through_to_the_next_date(date):
    exif = _exif({0x9003: date}, {0x0132: b"2020:01:02 03:04:05"})  # DateTime: the last one tried
    data = encode(quadrants(), "JPEG", exif=exif)
    assert render(data, "avatar").taken_at == "2020-01-02T03:04:05"


# ---------------------------------------------------------------- metadata padding: JPEG


def test_jpeg_with_app15_padding_over_the_cap_is_refused_fast(pillow_opens):
    # Given a 32x32 JPEG followed by 17 MB of APP15 segments (at scale: 1 GB cost 2 GB of RSS)
    small = encode(quadrants(32, 32), "JPEG")
    data = small[:2] + _APP15 * (17 * 1024 * 1024 // len(_APP15)) + small[2:]  # the cap: 16 MB
    # When rendered, Then it is refused as too large before Pillow reads a segment
    code, seconds = _refused(data)
    assert code == "image_too_large"
    assert seconds < 1.0
    assert pillow_opens == []


def test_jpeg_metadata_under_the_cap_renders(monkeypatch):
    monkeypatch.setattr(sniff, "MAX_METADATA_BYTES", 4 * len(_APP15), raising=False)
    small = encode(quadrants(32, 32), "JPEG")
    assert render(small[:2] + _APP15 * 3 + small[2:], "avatar").width == 32
    assert _refused(small[:2] + _APP15 * 5 + small[2:])[0] == "image_too_large"


def test_jpeg_with_too_many_small_segments_is_refused(monkeypatch, pillow_opens):
    monkeypatch.setattr(sniff, "MAX_METADATA_BLOCKS", 1000, raising=False)
    small = encode(quadrants(32, 32), "JPEG")
    data = small[:2] + b"\xff\xfe\x00\x02" * 2000 + small[2:]  # 2,000 empty comments
    assert _refused(data)[0] == "image_too_large"
    assert pillow_opens == []


@pytest.mark.parametrize("stray", [b"\xff" * 9000, b"\x00" * 9000], ids=["fill", "junk"])
def test_jpeg_with_stray_bytes_over_the_cap_is_refused(monkeypatch, pillow_opens, stray):
    # Pillow steps through fill and junk a byte at a time in Python (16 MB of fill: 6 s)
    monkeypatch.setattr(sniff, "MAX_STRAY_BYTES", 8192, raising=False)
    small = encode(quadrants(32, 32), "JPEG")
    first = 4 + int.from_bytes(small[4:6], "big")  # after SOI and the first segment (APP0)
    assert _refused(small[:first] + stray + small[first:])[0] == "image_too_large"
    assert pillow_opens == []


def test_jpeg_with_a_little_fill_renders(monkeypatch):
    monkeypatch.setattr(sniff, "MAX_STRAY_BYTES", 8192, raising=False)
    small = encode(quadrants(32, 32), "JPEG")
    assert render(small[:2] + b"\xff" * 100 + small[2:], "avatar").width == 32


def test_progressive_jpeg_with_padding_between_scans_is_refused(monkeypatch, pillow_opens):
    # libjpeg reads a progressive JPEG whole, saving the APP1 segments between its scans
    monkeypatch.setattr(sniff, "MAX_METADATA_BYTES", 4 * len(_APP15), raising=False)
    data = encode(quadrants(64, 64), "JPEG", progressive=True)
    second_scan = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    app1 = b"\xff\xe1" + _APP15[2:]
    padded = data[:second_scan] + app1 * 5 + data[second_scan:]
    assert _refused(padded)[0] == "image_too_large"
    assert pillow_opens == []


def test_data_after_the_end_of_image_is_not_counted(monkeypatch):
    # a Motion Photo's video, an MPF preview: after EOI, libjpeg reads none of it
    monkeypatch.setattr(sniff, "MAX_METADATA_BYTES", 2 * len(_APP15), raising=False)
    data = encode(quadrants(64, 64), "JPEG", progressive=True) + _APP15 * 5
    assert render(data, "avatar").width == 64


# ---------------------------------------------------------------- metadata padding: GIF


def test_gif_comment_of_one_byte_sub_blocks_is_refused_fast(pillow_opens):
    # Given a 32x32 GIF whose comment is 1-byte sub-blocks (~45x its size in Pillow's header
    # parse: a 40 MB file took 1.8 GB), just over the sub-block cap (~200 KB here)
    comment = b"\x21\xfe" + b"\x01A" * 100_010 + b"\x00"  # the cap: 100,000 sub-blocks
    # When rendered, Then it is refused as too large before Pillow reads a block
    code, seconds = _refused(_gif_with(comment))
    assert code == "image_too_large"
    assert seconds < 1.0
    assert pillow_opens == []


def test_gif_extensions_over_the_byte_cap_are_refused(monkeypatch, pillow_opens):
    monkeypatch.setattr(sniff, "MAX_METADATA_BYTES", 64 * 1024, raising=False)
    comment = b"\x21\xfe" + _sub_blocks(b"C" * 100_000, 255) + b"\x00"
    assert _refused(_gif_with(comment))[0] == "image_too_large"
    assert pillow_opens == []


def test_gif_comment_under_the_cap_renders(monkeypatch):
    monkeypatch.setattr(sniff, "MAX_METADATA_BYTES", 64 * 1024, raising=False)
    comment = b"\x21\xfe" + _sub_blocks(b"C" * 30_000, 255) + b"\x00"
    r = render(_gif_with(comment), "avatar")
    assert (r.width, r.height) == (32, 32)


def test_gif_image_data_in_tiny_sub_blocks_is_refused(monkeypatch, pillow_opens):
    # Pillow skips image data a sub-block at a time in Python when it counts the frames: a
    # 2 GB GIF of 1-byte sub-blocks is a billion steps. Encoders write 255-byte ones.
    monkeypatch.setattr(sniff, "MAX_METADATA_BLOCKS", 100, raising=False)
    data = encode(Image.effect_noise((64, 64), 80).convert("P"), "GIF")
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[pos] == 0x21:  # any extension before the image
        pos += 2
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    assert data[pos] == 0x2C and not data[pos + 9] & 0x80  # an image without a local colour table
    lzw_start = pos + 11
    end, lzw = lzw_start, b""
    while data[end]:
        lzw += data[end + 1 : end + 1 + data[end]]
        end += 1 + data[end]
    assert len(lzw) > 2000
    rechunked = data[:lzw_start] + _sub_blocks(lzw, 1) + data[end:]
    assert decode(rechunked).size == (64, 64)  # still a valid GIF
    pillow_opens.clear()
    assert _refused(rechunked)[0] == "image_too_large"
    assert pillow_opens == []
    monkeypatch.undo()
    assert render(data, "avatar").width == 64


def test_metadata_refusal_from_a_file(tmp_path, pillow_opens):
    small = encode(quadrants(32, 32), "JPEG")
    path = tmp_path / "padded.jpg"
    path.write_bytes(small[:2] + _APP15 * (17 * 1024 * 1024 // len(_APP15)) + small[2:])
    assert _refused(str(path))[0] == "image_too_large"
    assert pillow_opens == []


# ---------------------------------------------------------------- AVIF sequences


@pytest.fixture(scope="module")
def avif_sequence() -> bytes:
    frames = [Image.new("RGB", (48, 32), colour) for colour in ((220, 30, 30), (30, 220, 30), (30, 30, 220))]
    data = encode(frames[0], "AVIF", save_all=True, append_images=frames[1:], duration=100)
    assert data[8:12] == b"avis"  # an AVIF image sequence, as libavif writes it
    return data


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_avif_sequence_renders_its_primary_image(avif_sequence, tmp_path, as_file):
    source: bytes | str = avif_sequence
    if as_file:
        (tmp_path / "seq.avif").write_bytes(avif_sequence)
        source = str(tmp_path / "seq.avif")
    r = render(source, "avatar")
    assert (r.format, r.width, r.height, r.animated) == ("avif", 48, 32, False)
    for encs in r.variants.values():
        pixel = decode(encs[0].data).convert("RGB").getpixel((encs[0].width // 2, encs[0].height // 2))
        assert all(abs(a - b) <= 24 for a, b in zip(pixel, (220, 30, 30), strict=True)), pixel
    assert fallback(r, next(iter(r.variants))).format == "jpeg"


def _avif_rgba(bitdepth: int) -> bytes:
    import pyvips

    rgb = pyvips.Image.black(64, 48).new_from_image([200, 120, 40])
    return bytes(rgb.bandjoin(180).copy(interpretation="srgb").heifsave_buffer(
        compression="av1", bitdepth=bitdepth, Q=60))


def test_an_avif_whose_decode_exceeds_the_budget_is_refused(monkeypatch):
    """libheif decodes an AVIF whole, 12-bit samples as 16: a 100 MP 12-bit AVIF with alpha took
    2.0 GB (OOM in the 2,048 MB function) before the decoded size was bounded. The same pixels at
    8 bits fit the budget that 12 bits exceed."""
    from imgdrop.pipeline import engine

    # 8-bit RGBA fits exactly (raising=False: before the mend the bound did not exist)
    monkeypatch.setattr(engine, "MAX_HEIF_DECODED_BYTES", 64 * 48 * 4, raising=False)
    assert render(_avif_rgba(8), "default").format == "avif"
    code, _ = _refused(_avif_rgba(12))
    assert code == "image_too_large"
