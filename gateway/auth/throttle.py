"""A per-client-address budget of store lookups for keys the store does not know.

A key with a good tag or checksum but no record costs one store lookup the first time; after
that the negative cache answers. To stop one address from spending the store's time on an
endless supply of fresh made-up keys, each address may cause ``burst`` such misses, refilled at
``per_minute``; past that, a never-seen key from that address is refused (42904) without a
lookup. Everything is in process memory and costs a dict lookup: a request without a valid key
costs almost nothing. IPv6 addresses are budgeted per /64 (one host usually owns a whole /64).
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable

UNKNOWN_ADDRESS = "-"  # when the caller could not say where the request came from


def address_bucket(client: str | None) -> str:
    """The budget an address spends from: itself, its /64 for IPv6, ``-`` when unknown."""
    if not client:
        return UNKNOWN_ADDRESS
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class MissBudget:
    """Token buckets of unknown-key lookups, one per address, at most ``max_addresses`` kept."""

    def __init__(
        self,
        *,
        burst: int = 20,
        per_minute: float = 10.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.interval = 60.0 / per_minute  # seconds per refilled lookup
        self.max_addresses = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def _tokens(self, bucket: str) -> float:
        tokens, at = self._buckets.get(bucket, (float(self.burst), 0.0))
        return min(float(self.burst), tokens + (self._clock() - at) / self.interval)

    def retry_after(self, client: str | None) -> float | None:
        """None when ``client`` may cause another lookup; else seconds until it may."""
        tokens = self._tokens(address_bucket(client))
        return None if tokens >= 1 else (1 - tokens) * self.interval

    def charge(self, client: str | None) -> None:
        """Spend one lookup of ``client``'s budget (a lookup found no such key)."""
        bucket = address_bucket(client)
        self._buckets[bucket] = (self._tokens(bucket) - 1, self._clock())
        self._buckets.move_to_end(bucket)
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
