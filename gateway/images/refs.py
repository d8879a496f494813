"""What a client's image string is (URL, data URI, bare base64), and strict base64 decoding.

Lengths are checked before decoding, so a 40 MB base64 string is refused (41301) without
allocating its bytes. Base64 is decoded in strict mode: only the standard alphabet, correct
padding, nothing after it. Line breaks are the one leniency (Android's ``Base64.DEFAULT`` and
MIME encoders wrap at 76 columns); they are removed before decoding.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import Literal

import pybase64

from gateway.errors import ImageUndecodable, ImageURLRefused
from gateway.images.limits import check_encoded_size, refuse

Source = Literal["url", "data_uri", "base64"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SCHEME_RELATIVE = re.compile(r"^//[^/]*[.:\[]")
_DATA_URI = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*),", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Ref:
    """A classified image string: a URL to fetch, or base64 text to decode."""

    source: Source
    text: str  # the URL, or the base64 payload (line breaks removed)


def classify(ref: str, max_bytes: int) -> Ref:
    """Sort a client's image string; refuse bad schemes (40003), junk (40002), size (41301)."""
    if ref[:5].lower() == "data:":
        return Ref("data_uri", _data_uri_payload(ref, max_bytes))
    scheme = _SCHEME.match(ref[:64])
    if scheme is not None:
        name = scheme.group(1).lower()
        if name in ("http", "https"):
            return Ref("url", ref)
        raise refuse(ImageURLRefused, f"image URL scheme {name!r} refused: only http(s)", "scheme")
    if _SCHEME_RELATIVE.match(ref[:300]):
        raise refuse(ImageURLRefused, "image URL has no scheme: only http(s) URLs are fetched", "scheme")
    return Ref("base64", _base64_text(ref, max_bytes))


def _data_uri_payload(ref: str, max_bytes: int) -> str:
    header = _DATA_URI.match(ref[:256])
    if header is None:
        raise refuse(ImageUndecodable, "malformed data URI: expected data:image/<fmt>;base64,...", "base64")
    mime = header.group(1).strip().lower()
    params = [p.strip().lower() for p in header.group(2).split(";") if p.strip()]
    if "base64" not in params:
        raise refuse(ImageUndecodable, "data URI must be base64-encoded", "base64")
    if mime and not mime.startswith("image/") and mime != "application/octet-stream":
        raise refuse(ImageUndecodable, f"data URI media type {mime!r} is not an image", "format")
    return _base64_text(ref[header.end() :], max_bytes)


def _base64_text(text: str, max_bytes: int) -> str:
    # Decoded size is at most len * 3 / 4: refuse before touching the text any further.
    check_encoded_size(len(text) * 3 // 4, max_bytes)
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "").replace("\n", "")
    if not text:
        raise refuse(ImageUndecodable, "image is empty", "base64")
    return text


def decode_base64(text: str) -> bytes:
    """Strict base64 decoding: 40002 on any character outside the alphabet or bad padding."""
    try:
        # pybase64 (SIMD) validates as strictly as binascii's strict mode, ~40x faster: a 200 KB
        # photo costs ~10 us instead of ~450 us (docs/benchmarks.md).
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise refuse(
            ImageUndecodable,
            "image is not valid base64 (or a data:image/...;base64, URI, or an http(s) URL)",
            "base64",
        ) from None
