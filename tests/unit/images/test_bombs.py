"""Image bombs, per format: each refused with the contract's code before any decode, or decoded
within its budget. The files are made in ``bombs.py`` (the builder names the attack)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from PIL import Image

from gateway.errors import GatewayError, ImageUndecodable, PayloadTooLarge
from gateway.images import ImageIntake, PreparedImage
from tests.unit.images import bombs, factory


@pytest.fixture
def intake(make_intake: Callable[..., ImageIntake]) -> ImageIntake:
    return make_intake()


async def prepare(intake: ImageIntake, data: bytes) -> PreparedImage:
    [image] = await intake.prepare([base64.b64encode(data).decode()])
    return image


async def refused(intake: ImageIntake, data: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await prepare(intake, data)
    return caught.value


def decoded(image: PreparedImage) -> Image.Image:
    return Image.open(io.BytesIO(image.data))


async def test_jpeg_scan_bomb_refused_from_the_byte_walk(intake: ImageIntake) -> None:
    bomb = bombs.jpeg_scan_bomb(2000)
    assert bombs.count_scans(bomb) == 2000 and len(bomb) < 200_000
    error = await refused(intake, bomb)
    assert isinstance(error, PayloadTooLarge) and error.code == 41301
    assert error.reason == "scans"
    assert intake.pool.pids() == []  # no decoder was ever started for it


async def test_jpeg_just_over_the_scan_cap_refused(intake: ImageIntake) -> None:
    error = await refused(intake, bombs.jpeg_scan_bomb(33))
    assert error.code == 41301 and error.reason == "scans"


async def test_real_progressive_jpeg_accepted(intake: ImageIntake) -> None:
    source = bombs.progressive_jpeg(2048, 1536)  # over the pixel budget: decoded in a worker
    assert bombs.count_scans(source) == 10
    image = await prepare(intake, source)
    assert image.mime == "image/jpeg" and image.width * image.height <= 1_310_720


async def test_png_zlib_bomb_over_the_memory_cap_refused_before_decoding(intake: ImageIntake) -> None:
    bomb = bombs.png_zlib_bomb(7000, 7000)  # 49 MP, under the pixel limit; 190 KB of deflate
    error = await refused(intake, bomb)
    assert error.code == 41301 and error.reason == "memory"
    assert intake.pool.pids() == []


async def test_png_header_bomb_refused_on_pixels(intake: ImageIntake) -> None:
    error = await refused(intake, factory.png_bomb(100_000, 100_000))
    assert error.code == 41301 and error.reason == "pixels"


@pytest.mark.slow
async def test_png_zlib_bomb_within_budget_is_decoded(intake: ImageIntake) -> None:
    image = await prepare(intake, bombs.png_zlib_bomb(3000, 3000))
    assert image.width * image.height <= 1_310_720


async def test_apng_frame_bomb_keeps_only_the_default_image(intake: ImageIntake) -> None:
    image = await prepare(intake, bombs.apng_frame_bomb(100_000))
    assert b"acTL" not in image.data and getattr(decoded(image), "n_frames", 1) == 1


async def test_gif_canvas_bomb_refused(intake: ImageIntake) -> None:
    bomb = bombs.gif_canvas_bomb(7000, 7000)
    assert len(bomb) < 64
    error = await refused(intake, bomb)
    assert error.code == 41301 and error.reason == "memory"


async def test_gif_frame_bomb_decodes_only_the_first_frame(intake: ImageIntake) -> None:
    image = await prepare(intake, bombs.gif_frame_bomb(20_000))
    assert getattr(decoded(image), "n_frames", 1) == 1 and len(image.data) < 100


async def test_webp_canvas_bomb_refused(intake: ImageIntake) -> None:
    bomb = bombs.webp_canvas_bomb(7000, 7000)
    assert len(bomb) < 200
    error = await refused(intake, bomb)
    assert error.code == 41301 and error.reason == "memory"
    assert intake.pool.pids() == []


async def test_webp_frame_count_limited(intake: ImageIntake) -> None:
    error = await refused(intake, bombs.webp_canvas_bomb(64, 64, frames=1001))
    assert error.code == 41301 and error.reason == "frames"


async def test_webp_canvas_within_budget_decodes_first_frame(intake: ImageIntake) -> None:
    image = await prepare(intake, bombs.webp_canvas_bomb(1500, 1500, frames=3))
    assert getattr(decoded(image), "n_frames", 1) == 1


async def test_heic_declaring_a_huge_image_refused(intake: ImageIntake) -> None:
    error = await refused(intake, bombs.heic_declaring(30_000, 30_000))
    assert error.code == 41301 and error.reason == "memory"


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(factory.photo(320, 240), id="jpeg"),
        pytest.param(bombs.progressive_jpeg(), id="progressive-jpeg"),
        pytest.param(factory.photo(320, 240, fmt="PNG"), id="png"),
        pytest.param(factory.photo(320, 240, fmt="GIF"), id="gif"),  # a cut later frame is fine: cut anyway
        pytest.param(factory.photo(320, 240, fmt="WEBP"), id="webp"),
        pytest.param(factory.animated("WEBP", frames=3), id="animated-webp"),
        pytest.param(factory.encode(factory.halves(128, 96), "HEIF"), id="heic"),
    ],
)
@pytest.mark.parametrize("keep", [0.3, 0.9])
async def test_truncated_files_refused(intake: ImageIntake, source: bytes, keep: float) -> None:
    error = await refused(intake, bombs.truncated(source, keep))
    assert isinstance(error, ImageUndecodable) and error.code == 40002


@pytest.mark.parametrize(
    ("source", "payload"),
    [
        pytest.param(bombs.jpeg_zip_polyglot(), b"PK\x03\x04", id="jpeg+zip"),
        pytest.param(bombs.jpeg_html_polyglot(), b"<script", id="jpeg+html-comment"),
        pytest.param(bombs.png_html_polyglot(), b"<script", id="png+html"),
    ],
)
async def test_polyglots_lose_their_payload(intake: ImageIntake, source: bytes, payload: bytes) -> None:
    assert payload in source
    image = await prepare(intake, source)
    assert payload not in image.data
    decoded(image).load()
