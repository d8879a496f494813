"""Image intake as vLLM does it: base64 ``data:`` URIs and fetched URLs, decoded, sized, cached by hash."""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass

import httpx
import pybase64
from PIL import Image, ImageStat

from gateway.emulator.errors import EmulatorError, bad_request
from gateway.images.geometry import AspectRatioError, image_prompt_tokens

# Mean colour is taken from a copy at most this many pixels a side: cheap and stable enough.
_STAT_SIDE = 64
# Decoding larger payloads leaves the event loop (as vLLM's processor does) so the loop stays responsive.
_THREAD_THRESHOLD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the emulator knows of one decoded image."""

    sha256: str
    width: int
    height: int
    format: str
    mean_rgb: str  # "#rrggbb"
    tokens: int  # prompt tokens: visual + framing


class MMCache:
    """An LRU stand-in for vLLM's multi-modal processor cache, keyed by content hash (or client uuid)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, ImageInfo] = OrderedDict()
        self.queries = 0
        self.hits = 0

    def get(self, key: str) -> ImageInfo | None:
        """Look ``key`` up, counting the query and any hit."""
        self.queries += 1
        info = self._items.get(key)
        if info is not None:
            self.hits += 1
            self._items.move_to_end(key)
        return info

    def put(self, key: str, info: ImageInfo) -> None:
        """Remember ``info`` under ``key``, evicting the least recently used item."""
        self._items[key] = info
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every item and zero the counters."""
        self._items.clear()
        self.queries = self.hits = 0


def decode_data_uri(url: str) -> bytes:
    """The bytes of a base64 ``data:`` URI; vLLM refuses any other data URL."""
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise bad_request("Only base64 data URLs are supported for images.", "messages")
    try:
        return pybase64.b64decode(payload)  # what vLLM itself decodes with
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"Failed to decode base64 image data: {exc}", "messages") from None


async def fetch(client: httpx.AsyncClient, url: str) -> bytes:
    """GET an image URL (redirects followed, as vLLM does); failure is vLLM's 422."""
    try:
        response = await client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise EmulatorError(422, f"Failed to fetch image from {url}: {exc}", param="messages") from None
    return response.content


def describe(data: bytes, sha256: str, min_pixels: int, max_pixels: int) -> ImageInfo:
    """Decode ``data`` (cheaply: JPEG draft mode, reduced copy) into an ImageInfo; 400 if broken."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            fmt = img.format or "unknown"
            img.draft("RGB", (_STAT_SIDE, _STAT_SIDE))  # JPEG decodes at 1/2..1/8 scale
            img.load()
            small: Image.Image = img if img.mode in ("RGB", "RGBA", "L", "LA") else img.convert("RGB")
            factor = max(1, min(small.size) // _STAT_SIDE)
            if factor > 1:
                small = small.reduce(factor)
            mean = ImageStat.Stat(small.convert("RGB")).mean
        tokens = image_prompt_tokens(height, width, min_pixels, max_pixels)
    except AspectRatioError as exc:
        raise bad_request(str(exc), "messages") from None
    except Exception as exc:  # Pillow raises many kinds for a broken image
        raise bad_request(f"Failed to load image: {exc}", "messages") from None
    colour = "#" + "".join(f"{round(channel):02x}" for channel in mean[:3])
    return ImageInfo(sha256, width, height, fmt, colour, tokens)


async def load(
    url: str, client: httpx.AsyncClient, cache: MMCache, uuid: str | None, min_pixels: int, max_pixels: int
) -> tuple[str, ImageInfo]:
    """(sha256 of the bytes, ImageInfo) via the cache; a client ``uuid`` is trusted as the key, as in vLLM."""
    if url.startswith("data:"):
        data = decode_data_uri(url)
    elif url.startswith(("http://", "https://")):
        data = await fetch(client, url)
    else:
        raise bad_request("The URL must be either a HTTP, data or file URL.", "messages")
    sha = hashlib.sha256(data).hexdigest()
    key = uuid if uuid is not None else sha
    cached = cache.get(key)
    if cached is not None:
        return sha, cached  # with a reused uuid this describes another image: the stale answer vLLM gives
    if len(data) > _THREAD_THRESHOLD_BYTES:
        info = await asyncio.to_thread(describe, data, sha, min_pixels, max_pixels)
    else:
        info = describe(data, sha, min_pixels, max_pixels)
    cache.put(key, info)
    return sha, info
