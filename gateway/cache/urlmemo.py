"""A small in-process memo from image URL to content hash, honouring the origin's caching headers.

Lets the image intake skip re-downloading a URL it has just hashed, but only for as long as the
origin said the content is fresh: ``Cache-Control: max-age`` / ``s-maxage`` (we are a shared
intermediary), else ``Expires`` relative to ``Date``, minus ``Age``. ``no-store``, ``no-cache``,
``private`` or no freshness information at all → not memoised. Bounded LRU, capped lifetime.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime


def _directives(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            out[name.strip().lower()] = arg.strip().strip('"')
    return out


def _seconds(value: str | None) -> float | None:
    try:
        return float(int(value)) if value is not None else None
    except ValueError:
        return None


def freshness_seconds(headers: Mapping[str, str]) -> float:
    """How long a response with these headers may be reused by a shared cache (0: not at all)."""
    lower = {k.lower(): v for k, v in headers.items()}
    cc = _directives(lower.get("cache-control", ""))
    if {"no-store", "no-cache", "private"} & cc.keys():
        return 0.0
    lifetime = _seconds(cc.get("s-maxage"))
    if lifetime is None:
        lifetime = _seconds(cc.get("max-age"))
    if lifetime is None and "expires" in lower:
        try:
            expires = parsedate_to_datetime(lower["expires"]).timestamp()
            date = parsedate_to_datetime(lower["date"]).timestamp() if "date" in lower else time.time()
        except (TypeError, ValueError, IndexError):
            return 0.0  # an invalid Expires means "already expired" (RFC 9111 §5.3)
        lifetime = expires - date
    if lifetime is None:
        return 0.0
    age = _seconds(lower.get("age")) or 0.0
    return max(0.0, lifetime - age)


class UrlHashMemo:
    """URL → content hash, each entry living as long as its response headers allow (capped)."""

    def __init__(
        self, *, max_entries: int = 1024, max_age: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, url: str) -> str | None:
        """The remembered content hash of ``url`` while still fresh."""
        entry = self._data.get(url)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._data[url]
            return None
        self._data.move_to_end(url)
        return entry[1]

    def put(self, url: str, content_hash: str, headers: Mapping[str, str]) -> bool:
        """Remember the hash when the headers allow reuse; True when remembered."""
        lifetime = min(freshness_seconds(headers), self.max_age)
        if lifetime <= 0:
            self._data.pop(url, None)
            return False
        self._data[url] = (self._clock() + lifetime, content_hash)
        self._data.move_to_end(url)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)
        return True
