"""Admission control: how fast a request beyond the cap and the queue is refused (50301).

The emulator holds every answer for --prefill-ms; the gateway allows --cap requests in flight and
--queue waiting. Once those are taken, further requests are sent one at a time and timed.

    uv run python bench/admission.py --refused 100
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import threading
import time

import httpx
from stack import stack

from tests.images import png_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refused", type=int, default=100)
    parser.add_argument("--cap", type=int, default=4)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--prefill-ms", type=float, default=20_000)
    args = parser.parse_args()
    env = {
        "GATEWAY_UPSTREAM_MAX_INFLIGHT": str(args.cap),
        "GATEWAY_UPSTREAM_QUEUE_SIZE": str(args.queue),
        "GATEWAY_UPSTREAM_QUEUE_TIMEOUT": "30",
        "GATEWAY_CACHE_ENABLED": "false",
    }
    body = json.dumps({"image": base64.b64encode(png_bytes()).decode(), "prompt": "hi"}).encode()
    with stack(env, ("--prefill-ms", str(args.prefill_ms))) as s:
        headers = {"authorization": f"Bearer {s.key}", "content-type": "application/json"}
        url = f"{s.gateway_url}/v1/qwen-vl"
        holders = [
            threading.Thread(
                target=lambda: httpx.post(url, content=body, headers=headers, timeout=60), daemon=True
            )
            for _ in range(args.cap + args.queue)
        ]
        for thread in holders:
            thread.start()
        time.sleep(1.0)  # all admitted: cap in flight, the rest queued
        times, codes = [], []
        with httpx.Client(timeout=10) as client:
            client.get(f"{s.gateway_url}/healthz")  # a warm connection, so the timing is the gateway's
            for _ in range(args.refused):
                started = time.perf_counter()
                response = client.post(url, content=body, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                codes.append(response.json()["code"])
    refused = sum(code == 50301 for code in codes)
    print(f"cap {args.cap} in flight + {args.queue} queued, upstream holding each for {args.prefill_ms:g} ms")
    print(
        f"{refused}/{len(codes)} further requests refused with 50301; time to the refusal: "
        f"median {statistics.median(times):.2f} ms, p90 {statistics.quantiles(times, n=10)[-1]:.2f} ms, "
        f"max {max(times):.2f} ms"
    )
    return 0 if refused == len(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
