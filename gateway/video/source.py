"""What a client's video string is (URL, ``data:video/...`` URI, bare base64), and its bytes.

Lengths are checked before decoding, so an oversized base64 string is refused (41302) without
allocating its bytes. Base64 is strict (standard alphabet, correct padding), line breaks aside,
as for images (gateway/images/refs.py). URLs go through the images' SSRF-safe fetcher.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import Literal

import pybase64

from gateway.errors import ImageURLRefused
from gateway.images.limits import refuse
from gateway.video.limits import VideoLimits, undecodable

Source = Literal["url", "data_uri", "base64"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SCHEME_RELATIVE = re.compile(r"^//[^/]*[.:\[]")
_DATA_URI = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*),", re.IGNORECASE)
# The types a data URI may declare; the container's magic bytes decide what it really is.
_DATA_TYPES = ("video/", "application/octet-stream")


@dataclass(frozen=True, slots=True)
class VideoRef:
    """A classified video string: a URL to fetch, or base64 text to decode."""

    source: Source
    text: str  # the URL, or the base64 payload (line breaks removed)


def classify(ref: str, limits: VideoLimits) -> VideoRef:
    """Sort a client's video string; refuse bad schemes (40003), junk (40010), size (41302)."""
    if ref[:5].lower() == "data:":
        return VideoRef("data_uri", _data_uri_payload(ref, limits))
    scheme = _SCHEME.match(ref[:64])
    if scheme is not None:
        name = scheme.group(1).lower()
        if name in ("http", "https"):
            return VideoRef("url", ref)
        raise refuse(ImageURLRefused, f"video URL scheme {name!r} refused: only http(s)", "scheme")
    if _SCHEME_RELATIVE.match(ref[:300]):
        raise refuse(ImageURLRefused, "video URL has no scheme: only http(s) URLs are fetched", "scheme")
    return VideoRef("base64", _base64_text(ref, limits))


def _data_uri_payload(ref: str, limits: VideoLimits) -> str:
    header = _DATA_URI.match(ref[:256])
    if header is None:
        raise undecodable("malformed data URI: expected data:video/<fmt>;base64,...", "base64")
    mime = header.group(1).strip().lower()
    params = [p.strip().lower() for p in header.group(2).split(";") if p.strip()]
    if "base64" not in params:
        raise undecodable("video data URI must be base64-encoded", "base64")
    if mime and not mime.startswith(_DATA_TYPES):
        raise undecodable(f"data URI media type {mime!r} is not a video", "format")
    return _base64_text(ref[header.end() :], limits)


def _base64_text(text: str, limits: VideoLimits) -> str:
    # Decoded size is at most len * 3 / 4: refuse before touching the text any further.
    limits.check_bytes(len(text) * 3 // 4)
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "").replace("\n", "")
    if not text:
        raise undecodable("video is empty", "base64")
    return text


def decode_base64(text: str) -> bytes:
    """Strict base64 decoding: 40010 on any character outside the alphabet or bad padding."""
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise undecodable(
            "video is not valid base64 (or a data:video/...;base64, URI, or an http(s) URL)", "base64"
        ) from None
