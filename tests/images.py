"""Test images made on the fly: realistic-ish photos (noise + gradients), screenshots, odd files."""

from __future__ import annotations

import base64
import io
import random

from PIL import Image, ImageDraw


def photo_jpeg(width: int = 1024, height: int = 768, *, quality: int = 85, seed: int = 1) -> bytes:
    """A JPEG with gradients, shapes and noise, so it compresses like a photo, not a flat colour."""
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(10, max(11, width // 6))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    img = Image.blend(img, noise, 0.25)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def png_bytes(width: int = 64, height: int = 48, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def bare_b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
