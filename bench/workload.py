"""What the gateway saves the GPU: an app workload replayed open-loop, straight at vLLM and through it.

The mix follows the published guide's use cases (reference/qwen3-vl-mobile-guide.zh.txt):
拍照识物 (a 12 MP phone photo, the guide's 识物 prompt, max_tokens 200), 客服 screenshots (the
guide's "这张截图里有什么问题?", max_tokens 300), receipts (读取发票信息, 300) and shop product
pictures sent by URL (200). Shared images recur: a forwarded screenshot or receipt repeats an
earlier one (same bytes, same question) with probability --repeat, and product pictures come
from a catalogue of --catalogue items. With probability --burst a request arrives as
--burst-size identical copies at once (double taps, retries, one viral image). Arrivals are
Poisson at --rate requests/s (open loop: latency counts from the scheduled send time, so a slow
server cannot slow the client down); --stream of them are streamed; each client gives up after
--timeout s (the guide's 10 s), which aborts the request upstream. Images: bench/workload_images.py.

Every configuration replays the same requests against a fresh emulator with the H200 cost model
(``--cost-model h200``, ``--max-num-seqs 16`` as in the guide's vLLM command, answers of
--answer-tokens tokens) and, through the gateway, a fresh ``vlgw serve`` (embedded store):

- direct: the app calls a stock vLLM (processor default max_pixels 16,777,216), as without a gateway;
- direct, vLLM budgeted: the same with ``--mm-processor-kwargs '{"max_pixels": 1310720}'``;
- gateway: every mechanism on (pixel budget 1,310,720, cache, coalescing, admission at 16 in flight);
- then the gateway with one mechanism off in turn: pixel budget (16,777,216), cache (TTL 1 s, so
  only identical requests in flight at once still share), cache and coalescing (cache disabled),
  admission (no in-flight cap, no queue).

Reports p50/p99 latency of answered requests (failed ones are counted apart: shed with 429/503,
timed out), time to first token of streamed ones, GPU-seconds per 1,000 requests sent (the
emulator's modelled GPU busy time) and the cache's verdicts (X-Cache). With --runs N every
configuration runs N times, interleaved, and the table shows medians. Loopback only; bounded by
--requests. Defaults (one run of 30 requests per configuration) take about seven minutes here.

    uv run python bench/workload.py                       # prints the table
    uv run python bench/workload.py --requests 40 --rate 1 --out workload.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from stack import stack
from workload_images import phone_photo, photo_base, product, receipt, screenshot

from tests.servers import StaticFiles, serve

MODEL = "qwen3-vl-8b"
KINDS = {  # kind: (prompt, max_tokens) from the guide
    "photo": (
        "你是一个物品识别助手,请用中文回答。先说出物品名称,再用一句话描述其常见用途。不要使用Markdown格式。",
        200,
    ),
    "screenshot": ("这张截图里有什么问题?", 300),
    "receipt": ("读取发票信息:商家、日期、金额。", 300),
    "product": ("这是什么商品?推荐相似款。", 200),
}
STOCK_MAX_PIXELS = 16_777_216
BUDGET = 1_310_720
CONFIGS: list[tuple[str, dict[str, str] | None, int]] = [  # name, gateway env (None: direct), vLLM max_pixels
    ("direct", None, STOCK_MAX_PIXELS),
    ("direct, vLLM budgeted", None, BUDGET),
    ("gateway", {}, STOCK_MAX_PIXELS),
    ("gateway - pixel budget", {"GATEWAY_IMAGE_PIXEL_BUDGET": str(STOCK_MAX_PIXELS)}, STOCK_MAX_PIXELS),
    ("gateway - cache", {"GATEWAY_CACHE_TTL_SECONDS": "1"}, STOCK_MAX_PIXELS),
    ("gateway - cache - coalescing", {"GATEWAY_CACHE_ENABLED": "false"}, STOCK_MAX_PIXELS),
    ("gateway - admission", {"GATEWAY_UPSTREAM_MAX_INFLIGHT": "100000"}, STOCK_MAX_PIXELS),
]


@dataclass(frozen=True, slots=True)
class Request:
    """One request of the workload: when it is sent, what it carries."""

    at: float  # seconds after the start
    kind: str
    image: str  # a data: URI or a loopback URL
    stream: bool
    repeat: bool  # a copy of an earlier request (forwarded image, catalogue item, burst)


@dataclass(slots=True)
class Outcome:
    kind: str
    status: str  # "200", "429", "503", ..., "timeout", "error"
    seconds: float
    ttft: float | None
    cache: str | None


def build(args: argparse.Namespace, product_url: str) -> list[Request]:
    """The workload: kinds, images and arrival times, all from --seed."""
    rng = random.Random(args.seed)
    bases = [photo_base(seed) for seed in range(3)]
    mix = {
        "photo": args.photo,
        "screenshot": args.screenshot,
        "receipt": args.receipt,
        "product": args.product,
    }
    shared: dict[str, list[str]] = {"screenshot": [], "receipt": []}
    requests: list[Request] = []
    at = 0.0
    while len(requests) < args.requests:
        at += rng.expovariate(args.rate)
        kind = rng.choices(list(mix), weights=list(mix.values()))[0]
        repeat = False
        if kind == "photo":
            image = _uri(phone_photo(rng.choice(bases), rng), "jpeg")
        elif kind == "product":
            index = rng.randrange(args.catalogue)
            image, repeat = (
                f"{product_url}/p/{index}.jpg",
                any(r.image.endswith(f"/{index}.jpg") for r in requests),
            )
        elif shared[kind] and rng.random() < args.repeat:
            image, repeat = rng.choice(shared[kind]), True
        else:
            image = _uri(screenshot(rng), "png") if kind == "screenshot" else _uri(receipt(rng), "jpeg")
            shared[kind].append(image)
        copies = args.burst_size if rng.random() < args.burst else 1
        stream = rng.random() < args.stream
        for copy in range(min(copies, args.requests - len(requests))):
            requests.append(Request(at, kind, image, stream, repeat or copy > 0))
    return requests


def _uri(data: bytes, fmt: str) -> str:
    return f"data:image/{fmt};base64,{base64.b64encode(data).decode()}"


def body(request: Request, direct: bool) -> bytes:
    prompt, max_tokens = KINDS[request.kind]
    if not direct:
        app = {"image": request.image, "prompt": prompt, "max_tokens": max_tokens, "stream": request.stream}
        return msgspec.json.encode(app)
    content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": request.image}}]
    chat = {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "stream": request.stream,
    }
    return msgspec.json.encode(chat)


async def one(
    client: httpx.AsyncClient, url: str, request: Request, direct: bool, due: float, timeout: float
) -> Outcome:
    """Send one request; times count from ``due`` (its scheduled send time, loop clock)."""
    loop = asyncio.get_running_loop()
    ttft = None
    status = "error"
    cache = None
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("POST", url, content=body(request, direct)) as response:
                status = str(response.status_code)
                cache = response.headers.get("x-cache")
                async for line in response.aiter_lines():
                    if ttft is None and _has_text(line):
                        ttft = loop.time() - due
                    if line.startswith("data: ") and (
                        '"error"' in line or '"code":4' in line or '"code":5' in line
                    ):
                        status = "error"  # failed after the 200
    except TimeoutError:
        status = "timeout"
    except httpx.HTTPError:
        status = "error"
    return Outcome(request.kind, status, loop.time() - due, ttft if request.stream else None, cache)


def _has_text(line: str) -> bool:
    if not line.startswith("data: {"):
        return False
    return ('"content":"' in line and '"content":""' not in line) or '"text":"' in line


async def replay(
    requests: list[Request], url: str, key: str | None, direct: bool, timeout: float
) -> list[Outcome]:
    """Send every request at its time (open loop) and wait for all."""
    headers = {"content-type": "application/json"} | ({"authorization": f"Bearer {key}"} if key else {})
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=None) as client:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2
        tasks = []
        for request in requests:
            due = start + request.at
            await asyncio.sleep(max(0.0, due - loop.time()))
            tasks.append(asyncio.create_task(one(client, url, request, direct, due, timeout)))
        return await asyncio.gather(*tasks)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarise(name: str, outcomes: list[Outcome], gpu: dict[str, Any]) -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == "200"]
    ttfts = [o.ttft for o in ok if o.ttft is not None]
    return {
        "config": name,
        "sent": len(outcomes),
        "ok": len(ok),
        "shed": sum(o.status in ("429", "503") for o in outcomes),
        "timeout": sum(o.status == "timeout" for o in outcomes),
        "error": sum(o.status not in ("200", "429", "503", "timeout") for o in outcomes),
        "p50_s": percentile([o.seconds for o in ok], 50),
        "p99_s": percentile([o.seconds for o in ok], 99),
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p99_s": percentile(ttfts, 99),
        "gpu_s_per_1k": gpu["gpu_seconds"] * 1000 / len(outcomes),
        "prefill_s": gpu["prefill_seconds"],
        "decode_s": gpu["decode_seconds"],
        "visual_tokens": gpu["visual_tokens"],
        "cache": {
            status: sum(o.cache == status for o in outcomes) for status in ("HIT", "COALESCED", "MISS")
        },
    }


def run_config(
    name: str, env: dict[str, str] | None, max_pixels: int, requests: list[Request], args: argparse.Namespace
) -> dict[str, Any]:
    emulator = ("--cost-model", "h200", "--max-num-seqs", "16", "--answer-tokens", str(args.answer_tokens),
                "--max-pixels", str(max_pixels), "--max-images", "4")  # fmt: skip
    gateway_env = {
        "GATEWAY_UPSTREAM_MAX_INFLIGHT": "16",  # = vLLM --max-num-seqs, as settings.py advises
        "GATEWAY_UPSTREAM_SCRAPE_METRICS": "true",
        "GATEWAY_IMAGE_ALLOW_PRIVATE_URLS": "true",  # the product pictures are on loopback
        "GATEWAY_IMAGE_ALLOWED_PORTS": str(args.image_port),
        "GATEWAY_LOG_LEVEL": "warning",
        # The guide's advice (技巧3): answer the same image + prompt from the cache. Without it
        # the gateway caches only temperature 0, and these app requests send no temperature.
        "GATEWAY_CACHE_ANY_TEMPERATURE": "true",
        **(env or {}),
    }
    started = time.monotonic()
    with stack(gateway_env, emulator) as s:
        direct = env is None
        url = f"{s.emulator_url}/v1/chat/completions" if direct else f"{s.gateway_url}/v1/qwen-vl"
        outcomes = asyncio.run(replay(requests, url, None if direct else s.key, direct, args.timeout))
        time.sleep(0.5)  # let aborts of timed-out requests reach the engine
        gpu = httpx.get(f"{s.emulator_url}/emulator/stats", timeout=10).json()["gpu"]
    return summarise(name, outcomes, gpu) | {"wall_s": time.monotonic() - started}


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's runs folded into their medians (counts too)."""
    merged: dict[str, Any] = {"config": rows[0]["config"], "runs": len(rows)}
    for name, value in rows[0].items():
        if isinstance(value, dict):
            merged[name] = {k: statistics.median(row[name][k] for row in rows) for k in value}
        elif value is None or isinstance(value, int | float):
            values = [row[name] for row in rows if row[name] is not None]
            merged[name] = statistics.median(values) if values else None
    return merged


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| configuration | ok | shed | timeout | p50 s | p99 s | TTFT p50 s | TTFT p99 s | GPU-s / 1k req |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['ok']:g}/{r['sent']:g} | {r['shed']:g} | {r['timeout']:g} | "
            f"{_fmt(r['p50_s'])} | {_fmt(r['p99_s'])} | {_fmt(r['ttft_p50_s'])} | {_fmt(r['ttft_p99_s'])} | "
            f"{_fmt(r['gpu_s_per_1k'], 0)} |"
        )
    return "\n".join(lines)


def savings(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["config"]: r for r in rows}
    direct, full = by["direct"], by["gateway"]
    result: dict[str, Any] = {
        "gpu_factor": direct["gpu_s_per_1k"] / full["gpu_s_per_1k"],
        "p99_factor": (direct["p99_s"] or 0) / full["p99_s"] if full["p99_s"] else None,
        "per_mechanism_gpu_s_per_1k": {},
    }
    for name in by:
        if name.startswith("gateway - "):
            result["per_mechanism_gpu_s_per_1k"][name[10:]] = by[name]["gpu_s_per_1k"] - full["gpu_s_per_1k"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="requests per configuration (default 30)")
    parser.add_argument("--rate", type=float, default=1.0, help="mean arrivals per second (default 1)")
    parser.add_argument("--photo", type=float, default=0.4, help="weight of 12 MP photos (default 0.4)")
    parser.add_argument("--screenshot", type=float, default=0.25, help="weight of screenshots (default 0.25)")
    parser.add_argument("--receipt", type=float, default=0.15, help="weight of receipts (default 0.15)")
    parser.add_argument("--product", type=float, default=0.2, help="weight of product pictures by URL (0.2)")
    parser.add_argument(
        "--repeat", type=float, default=0.3, help="forwarded screenshot/receipt repeat rate (0.3)"
    )
    parser.add_argument("--catalogue", type=int, default=10, help="distinct product pictures (default 10)")
    parser.add_argument("--burst", type=float, default=0.05, help="chance a request comes as a burst (0.05)")
    parser.add_argument("--burst-size", type=int, default=4, help="identical copies in a burst (default 4)")
    parser.add_argument("--stream", type=float, default=0.5, help="fraction streamed (default 0.5)")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout, s (the guide's 10)")
    parser.add_argument("--answer-tokens", type=int, default=60, help="tokens per answer (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1, help="repeat every configuration; report medians")
    parser.add_argument("--only", default=None, help="comma-separated configuration names to run")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    files = StaticFiles({f"/p/{i}.jpg": (product(i), "image/jpeg") for i in range(args.catalogue)})
    with serve(files) as images:
        args.image_port = images.port
        started = time.monotonic()
        requests = build(args, images.url)
        print(
            f"workload: {len(requests)} requests, {args.rate}/s, built in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        chosen = [c for c in CONFIGS if args.only is None or c[0] in args.only.split(",")]
        runs: list[list[dict[str, Any]]] = []
        for run in range(args.runs):  # configurations interleaved, so machine noise hits all alike
            runs.append(
                [run_config(name, env, max_pixels, requests, args) for name, env, max_pixels in chosen]
            )
            print(f"  run {run + 1}/{args.runs} done", flush=True)
    rows = [median_row([run[i] for run in runs]) for i in range(len(chosen))]
    print(f"medians of {args.runs} run(s):" if args.runs > 1 else "one run:")
    print(table(rows))
    result: dict[str, Any] = {
        "parameters": {k: v for k, v in vars(args).items() if k != "out"},
        "rows": rows,
        "runs": runs,
    }
    names = {r["config"] for r in rows}
    if {"direct", "gateway"} <= names:
        result["savings"] = savings(rows)
        s = result["savings"]
        print(
            f"\nthrough the gateway: GPU-seconds {s['gpu_factor']:.1f}x fewer, "
            f"p99 {_fmt(s['p99_factor'], 1)}x lower"
        )
        for mechanism, extra in s["per_mechanism_gpu_s_per_1k"].items():
            print(f"  without {mechanism}: {extra:+.0f} GPU-s per 1,000 requests")
    kinds = {kind: sum(r.kind == kind for r in requests) for kind in KINDS}
    result["workload"] = {
        "kinds": kinds,
        "repeats": sum(r.repeat for r in requests),
        "streamed": sum(r.stream for r in requests),
    }
    if args.out:
        result["parameters"]["out"] = str(args.out)
        args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
