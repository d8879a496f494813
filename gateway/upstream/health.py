"""Active health checks and load scraping against one vLLM replica.

A replica is healthy when ``GET /health`` answers 200 *and* ``GET /v1/models`` lists the served
model: vLLM answers ``/health`` while a wrong or half-loaded model sits behind it, and a replica
serving another model would 404 every request. ``/metrics`` gives vLLM's own view of its load
(``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``), which also covers requests other
gateway processes sent it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from gateway.upstream.wire import UpstreamModelList

WAITING = "vllm:num_requests_waiting"
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")  # new name, pre-0.10 name


@dataclass(slots=True)
class Probe:
    """One health check's verdict."""

    ok: bool
    models: list[str] = field(default_factory=list)
    max_model_len: int | None = None
    error: str | None = None


@dataclass(slots=True, frozen=True)
class LoadSample:
    waiting: float
    kv_usage: float


RECHECK_SECONDS = 0.2  # a failure to confirm is asked again after this


async def probe(
    http: httpx.AsyncClient,
    url: str,
    *,
    model: str | None,
    headers: Mapping[str, str],
    timeouts: httpx.Timeout,
    confirm_failure: bool = False,
) -> Probe:
    """Check ``/health`` then ``/v1/models``; ``model`` None accepts any listed model.

    ``confirm_failure`` (a replica now healthy): a failure is asked again once before it counts.
    A saturated vLLM can drop one ``/health`` connection while it serves fine, and with one
    replica that lone failure would refuse every request until the next round; a dead replica
    fails the second check too, a moment later.
    """
    result = await _probe_once(http, url, model=model, headers=headers, timeouts=timeouts)
    if result.ok or not confirm_failure:
        return result
    await asyncio.sleep(RECHECK_SECONDS)
    return await _probe_once(http, url, model=model, headers=headers, timeouts=timeouts)


async def _probe_once(
    http: httpx.AsyncClient,
    url: str,
    *,
    model: str | None,
    headers: Mapping[str, str],
    timeouts: httpx.Timeout,
) -> Probe:
    try:
        health = await http.get(f"{url}/health", timeout=timeouts)
        if health.status_code != 200:
            return Probe(ok=False, error=f"/health answered {health.status_code}")
        listing = await http.get(f"{url}/v1/models", headers=dict(headers), timeout=timeouts)
    except httpx.TimeoutException:
        return Probe(ok=False, error="health check timed out")
    except httpx.HTTPError as exc:
        return Probe(ok=False, error=f"health check failed: {type(exc).__name__}")
    if listing.status_code != 200:
        return Probe(ok=False, error=f"/v1/models answered {listing.status_code}")
    try:
        cards = msgspec.json.decode(listing.content, type=UpstreamModelList).data
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Probe(ok=False, error="/v1/models answer is unreadable")
    ids = [card.id for card in cards]
    if not ids:
        return Probe(ok=False, error="/v1/models lists no model")
    wanted = model or ids[0]
    card = next((c for c in cards if c.id == wanted), None)
    if card is None:
        return Probe(ok=False, models=ids, error=f"model {wanted!r} is not served")
    return Probe(ok=True, models=ids, max_model_len=card.max_model_len)


async def scrape(http: httpx.AsyncClient, url: str, *, timeouts: httpx.Timeout) -> LoadSample | None:
    """vLLM's queue depth and KV-cache usage, or None when ``/metrics`` is unavailable."""
    try:
        response = await http.get(f"{url}/metrics", timeout=timeouts)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return parse_load(response.text)


def parse_load(text: str) -> LoadSample | None:
    """Waiting requests summed over engines, KV usage as the fullest engine; None if absent."""
    waiting: float | None = None
    kv: float | None = None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == WAITING:
                    waiting = (waiting or 0.0) + sample.value
                elif sample.name in KV_USAGE:
                    kv = max(kv or 0.0, sample.value)
    except ValueError:
        return None
    if waiting is None and kv is None:
        return None
    return LoadSample(waiting=waiting or 0.0, kv_usage=min(max(kv or 0.0, 0.0), 1.0))
