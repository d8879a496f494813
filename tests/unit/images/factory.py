"""Images made on the fly for intake tests: photos, screenshots, EXIF, animations, hostile files."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, ImageDraw

GPS_MARKER = "GPSTEST-51.5007N-0.1246W"


def photo(width: int = 640, height: int = 480, *, seed: int = 1, fmt: str = "JPEG", **save: object) -> bytes:
    """A photo-like image (gradient, shapes, noise) so it compresses like a photo."""
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(20):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(4, max(5, width // 5))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(256), 90))
    img = Image.blend(img, Image.effect_noise((width, height), 30).convert("RGB"), 0.15)
    return encode(img, fmt, **save)


def flat(
    width: int, height: int, fmt: str = "JPEG", colour: tuple[int, ...] = (120, 60, 30), mode: str = "RGB"
) -> bytes:
    """A flat image: cheap to make and decode, for size/token tests."""
    return encode(Image.new(mode, (width, height), colour), fmt)


def encode(img: Image.Image, fmt: str, **save: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **save)  # type: ignore[arg-type]
    return out.getvalue()


def halves(width: int = 200, height: int = 100) -> Image.Image:
    """Left half red, right half blue: shows rotations and flips."""
    img = Image.new("RGB", (width, height), (255, 0, 0))
    img.paste((0, 0, 255), (width // 2, 0, width, height))
    return img


def exif_with(orientation: int | None = None, gps: bool = True) -> bytes:
    """EXIF bytes with an orientation and a GPS block naming a recognisable marker."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        gps_ifd = exif.get_ifd(0x8825)
        gps_ifd[1] = "N"
        gps_ifd[2] = (51.0, 30.0, 2.52)
        gps_ifd[0x1B] = GPS_MARKER  # GPSProcessingMethod, a string we can search the bytes for
    return exif.tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file claiming a huge zero-filled greyscale image (deflate of a few rows only)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def gif_oversized_frame(frame_w: int = 60_000, frame_h: int = 60_000) -> bytes:
    """A 10x10 GIF whose first frame claims to be enormous."""
    out = b"GIF89a" + struct.pack("<HH", 10, 10) + bytes([0x80, 0, 0]) + b"\x00\x00\x00\xff\xff\xff"
    out += b"\x2c" + struct.pack("<HHHH", 0, 0, frame_w, frame_h) + b"\x00"
    return out + b"\x02\x02\x4c\x01\x00;"


def animated(fmt: str, frames: int = 3, size: tuple[int, int] = (64, 48)) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", size, colours[i % 4]) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()
