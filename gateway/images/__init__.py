"""Image intake: safe fetching, strict decoding, pixel budgets and content hashes (docs/images.md).

intake.py      ImageIntake.prepare(refs): the one entry point for routes
refs.py        URL / data URI / bare base64; strict base64, sizes checked before decoding
urls.py        URL policy (scheme, credentials, port, host); addresses.py: SSRF address rules
fetch.py       resolve once, connect to the checked IP with Host + SNI, redirects by hand
containers.py  magic bytes, EXIF orientation; jpeg/png/gif/webp.py: byte-level walk + strip
normalise.py   Pillow validation, draft decode, resize onto the Qwen grid, re-encode
prepared.py    PreparedImage, the context check; geometry.py: smart_resize, visual tokens
"""

from gateway.images.fetch import Resolver, system_resolve
from gateway.images.geometry import image_prompt_tokens, smart_resize, visual_tokens
from gateway.images.intake import ImageIntake
from gateway.images.prepared import PreparedImage

__all__ = [
    "ImageIntake",
    "PreparedImage",
    "Resolver",
    "image_prompt_tokens",
    "smart_resize",
    "system_resolve",
    "visual_tokens",
]
