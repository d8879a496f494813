"""Time to first token through the gateway vs straight at the emulator (streaming, c=1).

For each run the emulator is set to a fixed prefill delay; a client streams the same request
directly (chat route) and through the gateway (app route), alternating, and records when the
first content byte arrives. The difference of the medians is what the gateway adds between the
emulator sending its first chunk and the client receiving it.

    uv run python bench/ttft.py --requests 60 --prefill-ms 100
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time

import httpx
from stack import stack

from tests.images import photo_jpeg


def first_byte(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    with client.stream(
        "POST", url, content=body, headers={**headers, "content-type": "application/json"}
    ) as response:
        response.raise_for_status()
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: ") and ('"content"' in line or '"text"' in line):
                elapsed = time.perf_counter() - started
                break
        else:
            raise RuntimeError("no content event")
        for _ in lines:
            pass
    return elapsed * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--prefill-ms", type=float, default=100.0)
    args = parser.parse_args()
    b64 = base64.b64encode(photo_jpeg(1024, 768, quality=80, seed=3)).decode()
    direct_body = {
        "model": "qwen3-vl-8b",
        "stream": True,
        "max_tokens": 32,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64}"}},
                    {"type": "text", "text": "describe"},
                ],
            }
        ],
    }
    gateway_body = {"image": b64, "prompt": "describe", "stream": True, "max_tokens": 32}
    direct_bytes, gateway_bytes = json.dumps(direct_body).encode(), json.dumps(gateway_body).encode()
    with (
        stack({"GATEWAY_CACHE_ENABLED": "false"}, ("--prefill-ms", str(args.prefill_ms))) as s,
        httpx.Client(timeout=30) as client,
    ):
        auth = {"authorization": f"Bearer {s.key}"}
        for _ in range(3):  # warm-up
            first_byte(client, f"{s.emulator_url}/v1/chat/completions", direct_bytes, {})
            first_byte(client, f"{s.gateway_url}/v1/qwen-vl", gateway_bytes, auth)
        direct, through = [], []
        for _ in range(args.requests):
            direct.append(first_byte(client, f"{s.emulator_url}/v1/chat/completions", direct_bytes, {}))
            through.append(first_byte(client, f"{s.gateway_url}/v1/qwen-vl", gateway_bytes, auth))
    d, g = statistics.median(direct), statistics.median(through)
    print(f"prefill {args.prefill_ms:g} ms, {args.requests} requests each, ~200 KB JPEG")
    print(f"time to first token: direct median {d:.2f} ms, through the gateway {g:.2f} ms")
    print(f"added by the gateway: {g - d:+.2f} ms (x{g / d:.3f})")
    print(
        f"p90 direct {statistics.quantiles(direct, n=10)[-1]:.2f} ms, "
        f"gateway {statistics.quantiles(through, n=10)[-1]:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
