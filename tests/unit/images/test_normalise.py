"""Validation and normalisation: bombs, orientation, metadata, frames, budgets, output formats."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from PIL import Image

from gateway.errors import PayloadTooLarge
from gateway.images import ImageIntake, PreparedImage, smart_resize
from gateway.images.geometry import visual_tokens
from tests.unit.images import factory


@pytest.fixture
def intake(make_intake: Callable[..., ImageIntake]) -> ImageIntake:
    return make_intake()


async def prepare(intake: ImageIntake, data: bytes, **kwargs: int) -> PreparedImage:
    [image] = await intake.prepare([base64.b64encode(data).decode()], **kwargs)
    return image


def opened(image: PreparedImage) -> Image.Image:
    decoded = Image.open(io.BytesIO(image.data))
    assert decoded.size == (image.width, image.height)
    assert Image.MIME[decoded.format or ""] == image.mime
    return decoded


# --- hostile images ---------------------------------------------------------------------------


async def test_png_bomb_refused_on_its_header(intake: ImageIntake) -> None:
    bomb = factory.png_bomb(100_000, 100_000)  # 10 gigapixels in a few hundred bytes
    assert len(bomb) < 2000
    with pytest.raises(PayloadTooLarge) as caught:
        await prepare(intake, bomb)
    assert caught.value.code == 41301 and caught.value.reason == "pixels"


async def test_pixel_limit_below_pillows_own(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake(image_max_pixels=1_000_000)
    with pytest.raises(PayloadTooLarge, match="1000000 allowed"):
        await prepare(intake, factory.png_bomb(1500, 1000))


async def test_side_limit(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake(image_max_side=4000)
    with pytest.raises(PayloadTooLarge, match="per side"):
        await prepare(intake, factory.png_bomb(4001, 10))


async def test_gif_with_oversized_frame_refused(intake: ImageIntake) -> None:
    with pytest.raises(PayloadTooLarge):
        await prepare(intake, factory.gif_oversized_frame())


async def test_encoded_size_limit(make_intake: Callable[..., ImageIntake]) -> None:
    intake = make_intake(image_max_bytes=10_000)
    with pytest.raises(PayloadTooLarge, match="at most 10000 bytes"):
        await prepare(intake, factory.photo(640, 480))


# --- passthrough and metadata -------------------------------------------------------------------


async def test_clean_small_jpeg_passes_through_byte_for_byte(intake: ImageIntake) -> None:
    photo = factory.photo(1000, 750)
    text = base64.b64encode(photo).decode()
    [image] = await intake.prepare([f"data:image/jpeg;base64,{text}"])
    assert image.passthrough and image.data == photo
    assert image.data_uri() == f"data:image/jpeg;base64,{text}"  # the client's base64, reused
    assert image.data_uri() is image.data_uri()


async def test_gps_exif_stripped_without_reencoding(intake: ImageIntake) -> None:
    source = factory.encode(factory.halves(400, 300), "JPEG", quality=90, exif=factory.exif_with(1))
    assert factory.GPS_MARKER.encode() in source
    image = await prepare(intake, source)
    assert not image.passthrough
    assert factory.GPS_MARKER.encode() not in image.data and b"Exif" not in image.data
    assert b"PhoneMaker" not in image.data
    original, stripped = Image.open(io.BytesIO(source)), opened(image)
    assert original.tobytes() == stripped.tobytes()  # lossless: same pixels, not re-encoded
    assert stripped.getexif() == {}


async def test_xmp_comment_and_trailing_data_stripped(intake: ImageIntake) -> None:
    xmp = b"<x:xmpmeta><GPSLatitude>51,30N</GPSLatitude></x:xmpmeta>"
    source = factory.encode(factory.halves(), "JPEG", xmp=xmp, comment=b"shot on my phone")
    source += b"\xff\xd8\xff\xe1 secondary image with depth map"  # what MPF phones append
    image = await prepare(intake, source)
    assert b"GPSLatitude" not in image.data and b"shot on my phone" not in image.data
    assert image.data.endswith(b"\xff\xd9") and b"depth map" not in image.data


async def test_png_text_and_exif_chunks_stripped(intake: ImageIntake) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Location", factory.GPS_MARKER)
    info.add_itxt("XML:com.adobe.xmp", factory.GPS_MARKER, zip=True)
    source = factory.encode(factory.halves(), "PNG", pnginfo=info, exif=factory.exif_with(1))
    image = await prepare(intake, source)
    assert image.mime == "image/png"
    for marker in (b"tEXt", b"iTXt", b"eXIf", factory.GPS_MARKER.encode()):
        assert marker not in image.data
    assert opened(image).tobytes() == Image.open(io.BytesIO(source)).tobytes()


async def test_webp_exif_stripped(intake: ImageIntake) -> None:
    source = factory.encode(factory.halves(), "WEBP", exif=factory.exif_with(1), quality=90)
    image = await prepare(intake, source)
    assert image.mime == "image/webp" and factory.GPS_MARKER.encode() not in image.data
    assert opened(image).tobytes() == Image.open(io.BytesIO(source)).tobytes()


async def test_clean_png_passes_through(intake: ImageIntake) -> None:
    source = factory.flat(300, 200, "PNG")
    image = await prepare(intake, source)
    assert image.passthrough and image.data == source and image.mime == "image/png"


# --- orientation ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
async def test_exif_orientation_applied(intake: ImageIntake, fmt: str) -> None:
    # Stored 200x100, left red / right blue; orientation 6 means "rotate 90° clockwise to view".
    source = factory.encode(factory.halves(200, 100), fmt, exif=factory.exif_with(6))
    image = await prepare(intake, source)
    assert (image.width, image.height) == (100, 200)
    assert (image.source_width, image.source_height) == (100, 200)
    pixels = opened(image).convert("RGB")
    top, bottom = pixels.getpixel((50, 20)), pixels.getpixel((50, 180))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # red now on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue at the bottom
    assert factory.GPS_MARKER.encode() not in image.data


# --- budgets, grid and formats ------------------------------------------------------------------


async def test_phone_photo_normalised_onto_the_grid(intake: ImageIntake) -> None:
    source = factory.photo(4032, 3024, quality=85)
    image = await prepare(intake, source)
    assert (image.width, image.height) == (1312, 960)
    assert (image.source_width, image.source_height) == (4032, 3024)
    assert image.mime == "image/jpeg" and image.visual_tokens == 1230 + 2
    assert len(image.data) < len(source)
    assert opened(image).mode == "RGB"


async def test_resized_screenshot_becomes_jpeg(intake: ImageIntake) -> None:
    image = await prepare(intake, factory.photo(1920, 1080, fmt="PNG"))
    assert (image.width, image.height) == (1504, 832) and image.mime == "image/jpeg"
    assert image.visual_tokens == 1222 + 2


async def test_rotated_png_stays_lossless(intake: ImageIntake) -> None:
    source = factory.encode(factory.halves(200, 100), "PNG", exif=factory.exif_with(8))
    image = await prepare(intake, source)
    assert image.mime == "image/png" and (image.width, image.height) == (100, 200)
    rotated = Image.open(io.BytesIO(source)).transpose(Image.Transpose.ROTATE_90)
    assert opened(image).tobytes() == rotated.tobytes()


async def test_alpha_kept_as_png(intake: ImageIntake) -> None:
    rgba = Image.new("RGBA", (2000, 1500), (10, 200, 30, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 1000, 1500))
    image = await prepare(intake, factory.encode(rgba, "WEBP", lossless=True))
    assert image.mime == "image/png" and opened(image).mode == "RGBA"


async def test_opaque_rgba_webp_becomes_jpeg(intake: ImageIntake) -> None:
    image = await prepare(intake, factory.encode(Image.new("RGBA", (2000, 1500), (1, 2, 3, 255)), "WEBP"))
    assert image.mime == "image/jpeg" and (image.height, image.width) == smart_resize(
        1500, 2000, max_pixels=1_310_720
    )


async def test_cmyk_jpeg(intake: ImageIntake) -> None:
    image = await prepare(intake, factory.flat(3000, 2000, "JPEG", (0, 128, 255, 0), mode="CMYK"))
    assert image.mime == "image/jpeg" and opened(image).mode == "RGB"


async def test_sixteen_bit_png(intake: ImageIntake) -> None:
    deep = Image.linear_gradient("L").resize((2400, 1600)).convert("I;16")
    image = await prepare(intake, factory.encode(deep, "PNG"))
    assert opened(image).mode == "L" and image.width * image.height <= 1_310_720


async def test_heic_converted_to_jpeg(intake: ImageIntake) -> None:
    source = factory.encode(factory.halves(320, 240), "HEIF", quality=80)
    image = await prepare(intake, source)
    assert image.mime == "image/jpeg" and (image.width, image.height) == (320, 240)


async def test_animated_gif_first_frame_only(intake: ImageIntake) -> None:
    image = await prepare(intake, factory.animated("GIF", frames=4))
    decoded = opened(image)
    assert image.mime == "image/gif" and getattr(decoded, "n_frames", 1) == 1
    assert decoded.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


async def test_animated_png_first_frame_only(intake: ImageIntake) -> None:
    image = await prepare(intake, factory.animated("PNG", frames=3))
    decoded = opened(image)
    assert b"acTL" not in image.data and getattr(decoded, "n_frames", 1) == 1
    assert decoded.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


async def test_animated_webp_first_frame_only(intake: ImageIntake) -> None:
    image = await prepare(intake, factory.animated("WEBP", frames=3))
    decoded = opened(image)
    assert getattr(decoded, "n_frames", 1) == 1
    red = decoded.convert("RGB").getpixel((5, 5))
    assert isinstance(red, tuple) and red[0] > 200 and red[1] < 60


async def test_per_call_budget_lowers_the_grid(intake: ImageIntake) -> None:
    image = await prepare(intake, factory.flat(4032, 3024), pixel_budget=262_144)
    assert (image.height, image.width) == smart_resize(3024, 4032, max_pixels=262_144)
    assert image.visual_tokens == visual_tokens(image.height, image.width, max_pixels=1_310_720) + 2


async def test_per_call_budget_cannot_raise_the_configured_one(intake: ImageIntake) -> None:
    image = await prepare(intake, factory.flat(4032, 3024), pixel_budget=16_777_216)
    assert (image.width, image.height) == (1312, 960)
