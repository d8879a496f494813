"""Cache hits end to end: a 1 MB photo at temperature 0, answered from the cache.

Reports the median latency of a hit (sequential), what of it is intake (base64 decode + container
walk + sha256, measured in-process), and hit throughput of one gateway process (one core) with wrk.

    uv run python bench/cache_hit.py --requests 200 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import statistics
import subprocess
import sys
import time

import httpx
from stack import cpu_seconds, stack

from gateway.images import ImageIntake
from gateway.settings import Settings
from tests.images import photo_jpeg

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""


def photo_of_about(size: int) -> bytes:
    quality = 95
    data = photo_jpeg(1280, 1024, quality=quality, seed=11)
    while len(data) < size and quality < 100:
        quality += 1
        data = photo_jpeg(1280, 1024, quality=quality, seed=11)
    return data


def intake_ms(b64: str, runs: int) -> float:
    async def run() -> float:
        intake = ImageIntake(Settings(_env_file=None, image_pixel_budget=1310720))
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            await intake.prepare([b64])
            times.append((time.perf_counter() - started) * 1000)
        await intake.aclose()
        return statistics.median(times)

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    photo = photo_of_about(1_000_000)
    b64 = base64.b64encode(photo).decode()
    body = {"image": b64, "prompt": "what is this?", "temperature": 0, "max_tokens": 64}
    print(f"photo: {len(photo)} bytes JPEG 1280x1024 ({len(b64)} base64 characters)")
    print(f"intake alone (decode + walk + sha256, in-process): median {intake_ms(b64, 50):.2f} ms")
    with stack() as s, httpx.Client(timeout=30) as client:
        auth = {"authorization": f"Bearer {s.key}"}
        raw = json.dumps(body).encode()  # encoded once: the client's own JSON work is not the gateway's
        auth["content-type"] = "application/json"
        first = client.post(f"{s.gateway_url}/v1/qwen-vl", content=raw, headers=auth)
        assert first.headers["x-cache"] == "MISS", first.text
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            response = client.post(f"{s.gateway_url}/v1/qwen-vl", content=raw, headers=auth)
            times.append((time.perf_counter() - started) * 1000)
            assert response.headers["x-cache"] == "HIT"
        print(
            f"hit latency end to end (sequential): median {statistics.median(times):.2f} ms, "
            f"p90 {statistics.quantiles(times, n=10)[-1]:.2f} ms over {args.requests}"
        )
        if shutil.which("wrk"):
            (s.tmp / "body.json").write_text(json.dumps(body))
            (s.tmp / "post.lua").write_text(LUA)
            before = cpu_seconds(s.gateway_pid)
            out = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    "-c8",
                    f"-d{args.duration}s",
                    "-s",
                    str(s.tmp / "post.lua"),
                    f"{s.gateway_url}/v1/qwen-vl",
                ],
                env={"BENCH_KEY": s.key, "BENCH_BODY": str(s.tmp / "body.json"), "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rps = float(out.split("Requests/sec:")[1].split()[0])
            requests = int(out.split(" requests in")[0].split()[-1])
            cpu = (cpu_seconds(s.gateway_pid) - before) * 1000 / requests
            print(
                f"hit throughput, one gateway process, c=8: {rps:.0f} requests/s; "
                f"gateway CPU {cpu:.2f} ms per hit (so ~{1000 / cpu:.0f} hits/s per core)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
