"""Routing under one slow replica: round robin vs least outstanding (P2C), p50/p99 latency.

Three ``vlgw emulator`` processes on loopback (vLLM stand-ins, each its own process so they do
not share a GIL with the load generator) behind a ReplicaPool; a closed loop of CONCURRENCY
workers sends REQUESTS real chat completions through ``pool.lease()``. Fleets: all replicas
fast, then r0 slow (10× prefill and per-token delay), each under ``round_robin`` and
``least_outstanding``. Each cell is one long-lived pool (as in a gateway): WARMUP requests,
then RUNS measured runs; the table shows medians. Bounded: ~40k requests, about 3 minutes.

    uv run python -m bench.routing [--requests 3000] [--concurrency 24] [--runs 3] [--warmup 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx

from gateway.settings import Settings
from gateway.upstream.pool import ReplicaPool
from tests.servers import free_port, wait_for_port

FAST = {"prefill_ms": 20.0, "per_token_ms": 2.0, "answer_tokens": 16}
SLOW = {"prefill_ms": 200.0, "per_token_ms": 20.0, "answer_tokens": 16}
Routing = Literal["round_robin", "least_outstanding"]
ROUTINGS: tuple[Routing, ...] = ("round_robin", "least_outstanding")
BODY: dict[str, Any] = {
    "model": "qwen3-vl-8b",
    "messages": [{"role": "user", "content": "describe the photo"}],
    "max_tokens": 16,
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(urls: list[str], routing: Routing, args: argparse.Namespace) -> list[dict[str, float]]:
    """One long-lived pool (as in a gateway): a warm-up, then ``args.runs`` measured runs."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, upstream_urls=urls, upstream_routing=routing, upstream_max_inflight=256
    )
    limits = httpx.Limits(
        max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2
    )
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        pool = ReplicaPool(settings, http)
        await pool.start()
        await drive(pool, http, urls, args.warmup, args.concurrency)
        runs = [await drive(pool, http, urls, args.requests, args.concurrency) for _ in range(args.runs)]
        await pool.aclose()
    return runs


async def drive(
    pool: ReplicaPool, http: httpx.AsyncClient, urls: list[str], requests: int, concurrency: int
) -> dict[str, float]:
    """One closed-loop run: latency percentiles, throughput, and the share r0 served."""
    latencies: list[float] = []
    on_first = 0
    remaining = requests

    async def worker() -> None:
        nonlocal remaining, on_first
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with pool.lease() as replica:
                response = await http.post(f"{replica.url}/v1/chat/completions", json=BODY)
                response.raise_for_status()
                pool.report(replica, "ok")
                on_first += replica.url == urls[0]
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "rps": len(latencies) / elapsed,
        "share": on_first / len(latencies),
    }


@contextlib.contextmanager
def fleet(slow: bool) -> Iterator[list[str]]:
    """Three emulator processes; r0 slow when asked."""
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for index in range(3):
            knobs = SLOW if slow and index == 0 else FAST
            port = free_port()
            flags = [f"--{name.replace('_', '-')}={value}" for name, value in knobs.items()]
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "gateway", "emulator", "--port", str(port), *flags],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_for_port(port)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring (default 500)")
    args = parser.parse_args()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for slow in (False, True):
        with fleet(slow) as urls:
            for routing in ROUTINGS:
                results[("one slow" if slow else "all fast", routing)] = asyncio.run(
                    measure(urls, routing, args)
                )
    print(
        f"requests={args.requests} concurrency={args.concurrency} runs={args.runs}"
        f" warmup={args.warmup} (medians)"
    )
    print(
        f"{'fleet':<9} {'routing':<18} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>6} {'on r0':>6}"
        f" {'p99 vs fast':>11}"
    )
    for (name, routed), runs in results.items():
        p50, p99, rps, share = (statistics.median(r[k] for r in runs) for k in ("p50", "p99", "rps", "share"))
        base = statistics.median(r["p99"] for r in results[("all fast", routed)])
        print(
            f"{name:<9} {routed:<18} {p50 * 1000:7.1f} {p99 * 1000:7.1f} {rps:6.0f} {share:6.1%}"
            f" {p99 / base:10.2f}×"
        )


if __name__ == "__main__":
    main()
