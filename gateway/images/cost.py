"""What decoding an image will cost in memory, known from its headers before any decode.

The estimate is an upper bound of the peak, in bytes, of ``normalise`` on this image:

    overhead + decoder buffers + 3 x decoded pixels x 4 + 2 x output pixels x 4 + 2 x encoded bytes

- *decoder buffers* (``Parsed.decoder_bytes``, from the format module): a multi-scan JPEG's
  whole-image coefficient buffer (64 16-bit values per 8x8 block, even in draft mode); libwebp's
  canvases; libheif's planes;
- *decoded pixels*: the stored size, or for a JPEG the draft size (libjpeg scales by 1/2, 1/4 or
  1/8 while decoding, the largest that stays above the target); 4 bytes each (Pillow keeps RGB
  as 4 bytes too), three times: the decoded image, a mode-converted copy, the reduced one;
- *output pixels*: the size ``smart_resize`` gives (the resize result and its encoded copy);
- *encoded bytes*: the input and the container walk's stripped copy.

``bench/hostile.py`` measures the real peak of each format against this estimate.
"""

from __future__ import annotations

from gateway.images.containers import Parsed
from gateway.images.geometry import AspectRatioError, exceeds_budget, smart_resize
from gateway.images.normalise import PixelLimits

OVERHEAD = 4 * 1024 * 1024  # Pillow's and the codec's fixed allocations
BYTES_PER_PIXEL = 4
DECODED_COPIES = 3
_DRAFT_SCALES = (8, 4, 2)


def decode_memory(parsed: Parsed, encoded: int, limits: PixelLimits) -> int:
    """Upper bound of the memory, in bytes, that normalising this image needs."""
    width, height = parsed.width, parsed.height
    if not width:  # HEIF: the decoder's bound is all that is known
        output = limits.pixel_budget
        return OVERHEAD + parsed.decoder_bytes + 2 * BYTES_PER_PIXEL * output + 2 * encoded
    decoded = width * height
    output = decoded
    try:
        target_h, target_w = smart_resize(
            height, width, min_pixels=limits.min_pixels, max_pixels=limits.pixel_budget
        )
    except AspectRatioError:
        target_h, target_w = height, width  # refused by the decoder step anyway
    if exceeds_budget(height, width, limits.pixel_budget):
        output = target_h * target_w
        if parsed.format == "JPEG":
            scale = next((s for s in _DRAFT_SCALES if width // s >= target_w and height // s >= target_h), 1)
            decoded = -(-width // scale) * -(-height // scale)
    return (
        OVERHEAD
        + parsed.decoder_bytes
        + DECODED_COPIES * BYTES_PER_PIXEL * decoded
        + 2 * BYTES_PER_PIXEL * output
        + 2 * encoded
    )
