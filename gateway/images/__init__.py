"""Image intake: safe fetching, strict decoding, pixel budgets and content hashes (docs/images.md).

intake.py      ImageIntake.prepare(refs): the one entry point for routes
refs.py        URL / data URI / bare base64; strict base64, sizes checked before decoding
urls.py        URL policy (scheme, credentials, port, host); addresses.py: SSRF address rules
fetch.py       resolve once, connect to the checked IP with Host + SNI, redirects by hand
containers.py  magic bytes, EXIF orientation; jpeg/png/gif/webp.py: byte-level walk + strip
normalise.py   Pillow validation, draft decode, resize onto the Qwen grid, re-encode
prepared.py    PreparedImage, the context check; geometry.py: smart_resize, visual tokens
cost.py        the memory a decode will need, from the headers; fair.py: fair slots, byte budget
pool.py        decode worker processes (worker.py) with a CPU deadline; memory.py: RSS, malloc_trim
heif.py        HEIC's declared size (ispe), before decoding
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.images.fetch import Resolver, system_resolve
    from gateway.images.geometry import image_prompt_tokens, smart_resize, visual_tokens
    from gateway.images.intake import ImageIntake
    from gateway.images.prepared import PreparedImage

# Imported on first use (PEP 562), so a decode worker process (worker.py), which needs only
# the decoders, starts without importing the HTTP client, settings and metrics.
_EXPORTS = {
    "ImageIntake": "intake",
    "PreparedImage": "prepared",
    "Resolver": "fetch",
    "image_prompt_tokens": "geometry",
    "smart_resize": "geometry",
    "system_resolve": "fetch",
    "visual_tokens": "geometry",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.images' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gateway.images.{module}"), name)


__all__ = [
    "ImageIntake",
    "PreparedImage",
    "Resolver",
    "image_prompt_tokens",
    "smart_resize",
    "system_resolve",
    "visual_tokens",
]
