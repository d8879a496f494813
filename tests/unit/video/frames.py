"""Reading back what the intake produced: the JPEG frames inside a PreparedVideo's data URI."""

from __future__ import annotations

import base64
import io

from PIL import Image

from gateway.video import PreparedVideo

PREFIX = "data:video/jpeg;base64,"


def frames_of(video: PreparedVideo) -> list[Image.Image]:
    """Each frame of the data URI, decoded (and checked to be a JPEG)."""
    assert video.data_uri.startswith(PREFIX)
    images = []
    for text in video.data_uri[len(PREFIX) :].split(","):
        image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
        assert image.format == "JPEG"
        image.load()
        images.append(image)
    return images


def colour_at(image: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    """The RGB colour at a relative position (0..1) of ``image``."""
    r, g, b = image.convert("RGB").getpixel((int(x * (image.width - 1)), int(y * (image.height - 1))))  # type: ignore[misc]
    return r, g, b


def near(colour: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 12) -> bool:
    """Colours equal within lossy-codec tolerance (H.264/VP9 then JPEG, both 4:2:0)."""
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))
