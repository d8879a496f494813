"""Image strings and container checks: strict base64, sizes before decoding, magic bytes, structure."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from PIL import Image

from gateway.errors import GatewayError, ImageUndecodable, ImageURLRefused, PayloadTooLarge, TooManyImages
from gateway.images import ImageIntake
from gateway.images.refs import classify
from tests.unit.images import factory

PHOTO = factory.photo(160, 120)
B64 = base64.b64encode(PHOTO).decode()


@pytest.fixture
def intake(make_intake: Callable[..., ImageIntake]) -> ImageIntake:
    return make_intake()


async def refused(intake: ImageIntake, ref: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await intake.prepare([ref])
    return caught.value


@pytest.mark.parametrize(
    "ref",
    [
        f"data:image/jpeg;base64,{B64}",
        f"DATA:image/jpeg;BASE64,{B64}",
        f"data:image/png;base64,{B64}",  # a wrong declared type: the magic bytes decide
        f"data:;base64,{B64}",
        B64,
        "\r\n".join(B64[i : i + 76] for i in range(0, len(B64), 76)),  # MIME / Android line wrapping
    ],
)
async def test_accepted_forms(intake: ImageIntake, ref: str) -> None:
    [image] = await intake.prepare([ref])
    assert image.mime == "image/jpeg" and image.data == PHOTO


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("", "base64"),
        ("not base64 at all!", "base64"),
        (B64[:-1], "base64"),  # bad padding
        # junk after "==": pad so the length is 1 mod 3 whatever the photo's size (its noise is random)
        (base64.b64encode(PHOTO + b"\0" * ((1 - len(PHOTO)) % 3 or 3)).decode() + "junk", "base64"),
        (base64.b64encode(b"\x89PNG").decode() + "=AAAA", "base64"),  # junk after padding
        (B64.replace("A", "-", 1), "base64"),  # urlsafe alphabet
        (B64[:100] + "é" + B64[100:], "base64"),
        (B64[:100] + " " + B64[100:], "base64"),
        ("../images/x.jpg", "base64"),
        ("images/x.jpg", "base64"),
        ("data:image/jpeg," + B64, "base64"),  # not base64-encoded
        ("data:text/plain;base64," + B64, "format"),
        ("data:image/jpeg;base64", "base64"),
        (base64.b64encode(b"hello world, not an image").decode(), "format"),
    ],
)
async def test_undecodable(intake: ImageIntake, ref: str, reason: str) -> None:
    err = await refused(intake, ref)
    assert isinstance(err, ImageUndecodable) and err.code == 40002
    assert err.reason == reason


@pytest.mark.parametrize(
    "ref",
    [
        "file:///etc/passwd",
        "ftp://example.com/x.jpg",
        "javascript:alert(1)",
        "//cdn.example.com/x.jpg",
        "HTTPX://example.com/x.jpg",
    ],
)
async def test_bad_scheme_is_a_url_refusal(intake: ImageIntake, ref: str) -> None:
    err = await refused(intake, ref)
    assert isinstance(err, ImageURLRefused) and err.reason == "scheme"


def other_format(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(other_format("TIFF"), id="tiff-renamed"),
        pytest.param(other_format("BMP"), id="bmp-renamed"),
        pytest.param(other_format("ICO"), id="ico"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
        pytest.param(b"%PDF-1.7\n", id="pdf"),
        pytest.param(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", id="avif"),
    ],
)
async def test_other_formats_refused(intake: ImageIntake, data: bytes) -> None:
    err = await refused(intake, f"data:image/jpeg;base64,{base64.b64encode(data).decode()}")
    assert isinstance(err, ImageUndecodable) and err.reason == "format"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(PHOTO[: len(PHOTO) // 2], id="jpeg-half"),
        pytest.param(PHOTO[:-2], id="jpeg-no-eoi"),
        pytest.param(PHOTO[:300], id="jpeg-in-headers"),
        pytest.param(factory.flat(64, 64, "PNG")[:-12], id="png-no-iend"),
        pytest.param(factory.photo(64, 64, fmt="PNG")[:200], id="png-in-idat"),
        pytest.param(factory.animated("GIF")[:60], id="gif-in-frame"),
        pytest.param(factory.photo(64, 64, fmt="WEBP")[:-50], id="webp-short-of-riff"),
    ],
)
async def test_truncated_files_refused(intake: ImageIntake, data: bytes) -> None:
    err = await refused(intake, base64.b64encode(data).decode())
    assert isinstance(err, ImageUndecodable) and err.reason == "truncated"


async def test_header_and_decoder_must_agree(intake: ImageIntake) -> None:
    """A frame header edited after the fact no longer matches what Pillow reads."""
    data = bytearray(factory.flat(64, 48, "PNG"))
    data[16:20] = (5000).to_bytes(4, "big")  # IHDR width, CRC now wrong
    err = await refused(intake, base64.b64encode(bytes(data)).decode())
    assert isinstance(err, ImageUndecodable)


async def test_unsupported_jpeg_coding(intake: ImageIntake) -> None:
    data = bytearray(PHOTO)
    sof = data.index(b"\xff\xc0")
    data[sof + 1] = 0xC3  # lossless
    err = await refused(intake, base64.b64encode(bytes(data)).decode())
    assert isinstance(err, ImageUndecodable) and err.reason == "format"


def test_size_checked_before_decoding() -> None:
    """40 MB of base64 is refused on its length alone: classify never decodes."""
    huge = "A" * (40 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge) as caught:
        classify(huge, 12 * 1024 * 1024)
    assert caught.value.code == 41301
    with pytest.raises(PayloadTooLarge):
        classify("data:image/jpeg;base64," + huge, 12 * 1024 * 1024)


async def test_huge_base64_refused(intake: ImageIntake) -> None:
    err = await refused(intake, "data:image/jpeg;base64," + "A" * (40 * 1024 * 1024))
    assert isinstance(err, PayloadTooLarge) and err.reason == "bytes"


async def test_too_many_images(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake(image_max_images=2)
    with pytest.raises(TooManyImages) as caught:
        await intake.prepare([B64, B64, B64])
    assert caught.value.code == 40005


async def test_a_bad_image_after_good_ones_is_reported(intake: ImageIntake) -> None:
    with pytest.raises(ImageURLRefused):
        await intake.prepare([B64, "file:///etc/passwd"])
    with pytest.raises(ImageUndecodable):
        await intake.prepare([B64, "garbage!", B64])
