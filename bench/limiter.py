"""Cost of a limit check per request: embedded (in-process) and Redis on loopback.

    .venv/bin/python bench/limiter.py [--runs 5] [--checks 2000]

Starts its own throwaway redis-server on a free loopback port when ``redis-server`` is on PATH.
Prints, per backend and operation, the median over runs of the median microseconds per call
(and the p99 of the last run), as a Markdown table for docs/auth-and-limits.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.auth import KeyManager, Limits, Principal, SqliteKeyStore
from gateway.limits import Limiter
from gateway.store import EmbeddedDB, ResilientRedis

Op = Callable[[int], Awaitable[object]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")


async def measure(op: Op, runs: int, checks: int) -> tuple[float, float]:
    """(median over runs of the per-call median, p99 of the last run), in microseconds."""
    for i in range(min(200, checks)):  # warm-up: scripts loaded, connections open
        await op(i)
    medians, samples = [], []
    for _ in range(runs):
        samples = []
        for i in range(checks):
            start = time.perf_counter_ns()
            await op(i)
            samples.append((time.perf_counter_ns() - start) / 1000)
        medians.append(statistics.median(samples))
    samples.sort()
    return statistics.median(medians), samples[int(len(samples) * 0.99) - 1]


def operations(limiter: Limiter) -> dict[str, Op]:
    # Enough keys and a large quota that nothing is refused: the cost of an allowed request.
    limited = [
        Principal(f"k{i}", "vlgw_x", Limits(rpm=10**9, tpm=10**12, concurrency=10**6)) for i in range(100)
    ]
    free = Principal("free", "vlgw_x")

    async def unlimited(i: int) -> object:
        return await limiter.evaluate(free, 500)

    async def check(i: int) -> object:
        return await limiter.evaluate(limited[i % 100], 500)

    async def slot(i: int) -> object:
        lease = await limiter.acquire(limited[i % 100])
        if lease is not None:
            await lease.release()
        return None

    return {"check, no limits": unlimited, "check rpm+tpm": check, "concurrency acquire+release": slot}


async def bench(runs: int, checks: int) -> list[tuple[str, str, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = EmbeddedDB.in_dir(Path(tmp))
        keys = KeyManager(SqliteKeyStore(db), cache_seconds=2.0)
        plaintext, _ = await keys.create("bench")

        async def authenticate(i: int) -> object:
            return await keys.authenticate(plaintext)

        rows.append(("embedded", "authenticate (cached)", *await measure(authenticate, runs, checks)))
        await keys.aclose()
        db.close()
    for name, op in operations(Limiter(None)).items():
        rows.append(("embedded", name, *await measure(op, runs, checks)))
    server = start_redis()
    if server is None:
        print("redis-server not found: Redis rows skipped", file=sys.stderr)
        return rows
    proc, url = server
    redis = ResilientRedis(url, timeout=1.0, breaker_failures=3, breaker_reset_seconds=1.0)
    try:
        for name, op in operations(Limiter(redis)).items():
            rows.append(("redis", name, *await measure(op, runs, checks)))
    finally:
        await redis.aclose()
        proc.kill()
        proc.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--checks", type=int, default=2000)
    args = parser.parse_args()
    rows = asyncio.run(bench(args.runs, args.checks))
    print(f"runs={args.runs} checks/run={args.checks} python={sys.version.split()[0]}")
    print("| backend | operation | median µs/call | p99 µs (last run) |")
    print("|---|---|---:|---:|")
    for backend, op, median, p99 in rows:
        print(f"| {backend} | {op} | {median:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
