"""Hostile images: the worst CPU and memory of any image the gateway accepts, RSS under decode
bombs and after them, and another key's photo latency under a flood of slow image URLs.

    uv run python bench/hostile.py                      # everything, ~3-4 minutes
    uv run python bench/hostile.py --settle 60 --out hostile.json
    uv run python bench/hostile.py --skip-serve         # part A only (no gateway)

Part A, per format (no server): the largest images each admission rule still accepts (pixel
limit, per-image decode memory, 32 JPEG scans, first frame only), made here, each normalised in
a fresh process: its CPU time (getrusage) and the growth of its peak RSS (ru_maxrss over the RSS
before decoding), next to the estimate admission used. Bombs over a limit are listed with the
rule that refused them. Goals (issue #13): <= 1 s CPU and <= 200 MB each.

Part B, against a real ``vlgw serve`` and the emulator on loopback (bench/stack.py):
- *bombs*: 8 decode bombs at once (the worst accepted images of part A, and refused ones),
  RSS of the gateway and its decode workers sampled every 20 ms: peak growth over the warm
  level (goal < 300 MB); then, ``--settle`` seconds later, the RSS again (goal: within 50 MB
  of warm);
- *flood*: key ``flood`` keeps ``--flood`` image URLs open on a loopback server that drips a byte
  every 250 ms (each fetch ends at the 5 s fetch deadline), while key ``victim`` sends its
  ~200 KB base64 photo ``--victim`` times in a row: its p50/p99 against the same unloaded, in
  ``--rounds`` alternating rounds, medians reported (goal: p99 <= 2x). The drip server and the
  flood run in processes of their own, so they share neither a GIL nor a loop with the client.

Everything is bounded: fixed request counts, and every phase has a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
from PIL import Image
from stack import ROOT, cpu_seconds, stack

from gateway.errors import GatewayError
from gateway.images.cost import decode_memory
from gateway.images.normalise import PixelLimits, checked_parse
from gateway.settings import Settings
from tests.images import photo_jpeg
from tests.unit.images import bombs, factory

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
LIMITS = PixelLimits(
    pixel_budget=SETTINGS.image_pixel_budget,
    min_pixels=SETTINGS.image_min_pixels,
    max_pixels=SETTINGS.image_max_pixels,
    max_side=SETTINGS.image_max_side,
    jpeg_quality=SETTINGS.image_jpeg_quality,
)
MB = 1024 * 1024

MEASURE = """
import json, pickle, re, resource, sys
from pathlib import Path
from gateway.images.memory import rss_bytes
from gateway.images.normalise import checked_parse, decode
from tests.unit.images import factory
data = open(sys.argv[1], "rb").read()
limits = pickle.loads(bytes.fromhex(sys.argv[2]))
warm = factory.flat(64, 64, "PNG")  # codecs initialised, as in a warm decode worker
decode(warm, limits, checked_parse(warm, limits))
parsed = checked_parse(data, limits)
Path("/proc/self/clear_refs").write_text("5")  # peak RSS (VmHWM) := current RSS
before = rss_bytes()
start = resource.getrusage(resource.RUSAGE_SELF)
decode(parsed.data, limits, parsed)
end = resource.getrusage(resource.RUSAGE_SELF)
cpu = end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
print(json.dumps({"cpu_s": cpu, "peak_mb": (peak - before) / 2**20}))
"""


def admitted(data: bytes) -> tuple[bool, str, int]:
    """What the gateway's admission says: (accepted, refusal reason, estimated bytes)."""
    try:
        parsed = checked_parse(data, LIMITS)
    except GatewayError as exc:
        return False, f"{exc.code} {exc.reason}", 0
    estimate = decode_memory(parsed, len(data), LIMITS)
    if estimate > SETTINGS.image_decode_max_memory:
        return False, "41301 memory", estimate
    if len(data) > SETTINGS.image_max_bytes:
        return False, "41301 bytes", estimate
    return True, "", estimate


def largest(make: Any, side: int, floor: int = 256) -> tuple[int, bytes]:
    """The largest 4:3 image ``make(w, h)`` makes that admission accepts (shrinking by 1/8)."""
    while side > floor:
        data = make(side, side * 3 // 4)
        if admitted(data)[0]:
            return side, data
        side = side * 7 // 8
    raise RuntimeError("nothing accepted")


def gif_of(width: int, height: int) -> bytes:
    grey = Image.linear_gradient("L").resize((width, height))
    return factory.encode(Image.blend(grey, Image.effect_noise((width, height), 60), 0.3), "GIF")


def webp_photo(width: int, height: int) -> bytes:
    return factory.encode(Image.open(io.BytesIO(photo_jpeg(width, height))), "WEBP", quality=80)


def heic_photo(width: int, height: int) -> bytes:
    return factory.encode(Image.open(io.BytesIO(photo_jpeg(width, height))), "HEIF", quality=60)


def corpus(quick: bool) -> list[tuple[str, str, bytes]]:
    """(format, name, bytes): the worst accepted images per format, then refused bombs."""
    big = 4000 if quick else 8000
    items: list[tuple[str, str, bytes]] = []
    side, data = largest(lambda w, h: photo_jpeg(w, h, quality=90), big)
    items.append(("JPEG", f"baseline photo {side}x{side * 3 // 4}", data))
    side, data = largest(lambda w, h: factory.photo(w, h, progressive=True, quality=90), big)
    items.append(("JPEG", f"progressive photo {side}x{side * 3 // 4}", data))
    side, data = largest(lambda w, h: bombs.jpeg_scan_bomb(32, w, h), big)
    items.append(("JPEG", f"32 scans (at the cap) {side}x{side * 3 // 4}", data))
    side, data = largest(lambda w, h: bombs.png_zlib_bomb(w, h), big)
    items.append(("PNG", f"zlib bomb RGBA {side}x{side * 3 // 4}", data))
    items.append(("PNG", "noisy photo 3000x2250", factory.photo(3000, 2250, fmt="PNG")))
    side, data = largest(gif_of, 6000)
    items.append(("GIF", f"full-canvas frame {side}x{side * 3 // 4}", data))
    items.append(("GIF", "20,000 frames", bombs.gif_frame_bomb(20_000)))
    side, data = largest(lambda w, h: bombs.webp_canvas_bomb(w, h, frames=3), big)
    items.append(("WEBP", f"animated canvas {side}x{side * 3 // 4}", data))
    items.append(("WEBP", "lossy photo 4000x3000", webp_photo(4000, 3000)))
    items.append(("HEIF", "photo 2000x1500", heic_photo(2000, 1500)))
    items.append(("JPEG", "scan bomb, 2000 scans", bombs.jpeg_scan_bomb(2000)))
    items.append(("PNG", "zlib bomb 7000x7000", bombs.png_zlib_bomb(7000, 7000)))
    items.append(("PNG", "header bomb 100000^2", factory.png_bomb()))
    items.append(("GIF", "canvas bomb 7000x7000", bombs.gif_canvas_bomb()))
    items.append(("WEBP", "canvas bomb 7000x7000", bombs.webp_canvas_bomb()))
    items.append(("HEIF", "declaring 30000x30000", bombs.heic_declaring(30_000, 30_000)))
    return items


def measure(data: bytes) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(data)
        handle.flush()
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, handle.name, pickle.dumps(LIMITS).hex()],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=True,
        )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def part_a(items: list[tuple[str, str, bytes]]) -> list[dict[str, Any]]:
    rows = []
    print(
        f"\n{'format':6} {'image':36} {'bytes':>10} {'verdict':>14} {'est MB':>7} {'cpu s':>6} {'peak MB':>8}"
    )
    for fmt, name, data in items:
        ok, reason, estimate = admitted(data)
        row: dict[str, Any] = {"format": fmt, "image": name, "bytes": len(data), "accepted": ok}
        row.update(refused=reason, estimate_mb=round(estimate / MB, 1))
        if ok:
            row.update({k: round(v, 3) for k, v in measure(data).items()})
        rows.append(row)
        cpu = f"{row['cpu_s']:.3f}" if ok else "-"
        peak = f"{row['peak_mb']:.1f}" if ok else "-"
        verdict = "accepted" if ok else reason
        print(f"{fmt:6} {name:36} {len(data):>10,} {verdict:>14} {row['estimate_mb']:>7} {cpu:>6} {peak:>8}")
    print("\nworst accepted, per format (goal: <= 1 s CPU, <= 200 MB):")
    for fmt in dict.fromkeys(r["format"] for r in rows):
        accepted = [r for r in rows if r["format"] == fmt and r["accepted"]]
        if accepted:
            cpu = max(r["cpu_s"] for r in accepted)
            peak = max(r["peak_mb"] for r in accepted)
            print(f"  {fmt:5} cpu {cpu:.3f} s   peak {peak:.1f} MB")
    return rows


def hop_overhead(runs: int) -> list[dict[str, Any]]:
    """What moving a decode into a worker process costs, against decoding in this process."""
    from gateway.images.normalise import decode
    from gateway.images.pool import DecodePool

    rotated = factory.photo(1024, 768, exif=factory.exif_with(6), quality=85)  # a ~200 KB phone photo
    cases = [("200 KB photo, EXIF-rotated", rotated), ("12 MP photo", photo_jpeg(4032, 3024, quality=90))]

    async def run() -> list[dict[str, Any]]:
        pool = DecodePool(1, memory_budget=256 * MB, cpu_limit=5, wall_limit=30, recycle_rss=1 << 40)
        rows = []
        try:
            for name, data in cases:
                parsed = checked_parse(data, LIMITS)
                memory = decode_memory(parsed, len(data), LIMITS)
                inline, wall, parent = [], [], []
                for _ in range(runs):
                    started = time.perf_counter()
                    decode(parsed.data, LIMITS, parsed)
                    inline.append(time.perf_counter() - started)
                    started, cpu = time.perf_counter(), time.process_time()
                    deadline = asyncio.get_running_loop().time() + 30
                    await pool.run("bench", parsed.data, LIMITS, parsed, memory=memory, deadline=deadline)
                    wall.append(time.perf_counter() - started)
                    parent.append(time.process_time() - cpu)
                rows.append(
                    {
                        "image": name,
                        "bytes": len(data),
                        "in_process_ms": round(statistics.median(inline) * 1000, 2),
                        "worker_ms": round(statistics.median(wall) * 1000, 2),
                        "hop_ms": round((statistics.median(wall) - statistics.median(inline)) * 1000, 2),
                        "gateway_cpu_ms": round(statistics.median(parent) * 1000, 3),
                    }
                )
        finally:
            await pool.aclose()
        return rows

    rows = asyncio.run(run())
    print(f"\nprocess hop (medians of {runs}; passthrough photos never take it):")
    head = f"{'in-process ms':>14} {'worker ms':>10} {'hop ms':>7} {'gateway cpu ms':>15}"
    print(f"  {'image':28} {'bytes':>10} {head}")
    for r in rows:
        print(
            f"  {r['image']:28} {r['bytes']:>10,} {r['in_process_ms']:>14} {r['worker_ms']:>10} "
            f"{r['hop_ms']:>7} {r['gateway_cpu_ms']:>15}"
        )
    return rows


def rss_by_process(pid: int) -> list[int]:
    """RSS of a process, then of each of its children (the decode workers), in bytes."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    sizes = []
    for one in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            sizes.append(int(Path(f"/proc/{one}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    return sizes


def tree_rss(pid: int) -> int:
    """RSS of a process and its children together, in bytes."""
    return sum(rss_by_process(pid))


@contextlib.contextmanager
def sampling(pid: int) -> Iterator[list[int]]:
    samples: list[int] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            samples.append(tree_rss(pid))
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def app_body(image: str) -> dict[str, Any]:
    return {"image": image, "prompt": "describe", "max_tokens": 8}


async def post_all(url: str, key: str, images: list[str], timeout: float = 60) -> list[int]:
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=timeout) as client:
        answers = await asyncio.gather(
            *(client.post(f"{url}/v1/qwen-vl", json=app_body(image)) for image in images),
            return_exceptions=True,
        )
    return [a.status_code if isinstance(a, httpx.Response) else 599 for a in answers]


def make_key(env_dir: Path, name: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "create", "--name", name],
        env={**clean, "GATEWAY_DATA_DIR": str(env_dir)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


async def drip_main() -> None:
    """``hostile.py _drip``: a loopback server answering 200 image/jpeg, then a byte every 250 ms.

    Its own process, so its work does not share a GIL or a loop with the measuring client.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n\xff")
            for _ in range(60):  # 15 s at most; the gateway gives up after 5 s
                await asyncio.sleep(0.25)
                writer.write(b"\xd8")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(900)  # bounded: the bench stops it long before


async def flood_main(url: str, key: str, image_url: str, size: int, seconds: float) -> None:
    """``hostile.py _flood``: keep ``size`` requests for ``image_url`` open for ``seconds``."""
    codes: list[int] = []
    stop_at = time.monotonic() + seconds
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30) as client:

        async def one() -> None:
            while time.monotonic() < stop_at:
                response = await client.post(f"{url}/v1/qwen-vl", json=app_body(image_url))
                codes.append(response.status_code)

        async def ready() -> None:
            await asyncio.sleep(1.0)  # the requests are in and their fetches dripping
            print("flooding", flush=True)

        await asyncio.gather(ready(), *(one() for _ in range(size)))
    print(json.dumps({str(c): codes.count(c) for c in sorted(set(codes))}), flush=True)


@contextlib.contextmanager
def helper(*argv: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


async def victim_latencies(url: str, key: str, photo: str, count: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
        for index in range(count):
            # A distinct prompt per call: no cache hit, the image goes through intake every time.
            body = {"image": photo, "prompt": f"describe #{index}", "max_tokens": 8}
            started = time.perf_counter()
            response = await client.post(f"{url}/v1/qwen-vl", json=body)
            times.append(time.perf_counter() - started)
            response.raise_for_status()
    return times


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


def part_b(items: list[tuple[str, str, bytes]], args: argparse.Namespace) -> dict[str, Any]:
    accepted = [base64.b64encode(d).decode() for _, _, d in items if admitted(d)[0]]
    refused = [base64.b64encode(d).decode() for _, _, d in items if not admitted(d)[0]]
    photo = base64.b64encode(photo_jpeg()).decode()  # the ~200 KB phone photo of bench/overhead.py
    result: dict[str, Any] = {}
    with helper("_drip") as drip:
        assert drip.stdout is not None
        drip_port = int(drip.stdout.readline())
        env = {
            "GATEWAY_IMAGE_ALLOW_PRIVATE_URLS": "true",
            "GATEWAY_IMAGE_ALLOWED_PORTS": f"80,443,{drip_port}",
            "GATEWAY_CACHE_ENABLED": "false",
            "GATEWAY_IMAGE_MAX_IMAGES": "4",
        }
        with stack(env) as running:
            url, pid = running.gateway_url, running.gateway_pid
            flood_key, victim_key = make_key(running.tmp, "flood"), make_key(running.tmp, "victim")
            # Warm: ordinary photos, and ones that need a decode (every worker starts and works).
            decoded = base64.b64encode(photo_jpeg(3000, 2000)).decode()
            for _ in range(3):
                asyncio.run(post_all(url, running.key, [photo, decoded, decoded]))
            time.sleep(2)
            warm = tree_rss(pid)
            warm_split = rss_by_process(pid)
            burst = (accepted * 8)[: args.bombs]
            with sampling(pid) as samples:
                codes = asyncio.run(post_all(url, running.key, burst))
            peak = max(samples or [warm])
            hostile = asyncio.run(post_all(url, running.key, refused + accepted))
            time.sleep(args.settle)
            settled = tree_rss(pid)
            settled_split = rss_by_process(pid)
            result["rss"] = {
                "warm_mb": round(warm / MB, 1),
                "warm_by_process_mb": [round(v / MB, 1) for v in warm_split],
                "after_by_process_mb": [round(v / MB, 1) for v in settled_split],
                "bombs_peak_mb": round(peak / MB, 1),
                "bombs_growth_mb": round((peak - warm) / MB, 1),
                "settle_s": args.settle,
                "after_settle_mb": round(settled / MB, 1),
                "after_vs_warm_mb": round((settled - warm) / MB, 1),
                "burst_codes": sorted(codes),
                "hostile_codes": sorted(hostile),
                "responses_5xx": sum(1 for c in codes + hostile if c >= 500),
            }
            # Rounds alternate unloaded and flooded, so machine noise hits both alike.
            unloaded: list[list[float]] = []
            loaded: list[list[float]] = []
            flood_codes: list[str] = []
            seconds = args.victim * 0.1 + 5  # longer than the victim's requests take
            for _ in range(args.rounds):
                unloaded.append(asyncio.run(victim_latencies(url, victim_key, photo, args.victim)))
                drip_url = f"http://127.0.0.1:{drip_port}/drip.jpg"
                with helper("_flood", url, flood_key, drip_url, str(args.flood), str(seconds)) as flooding:
                    # Wait for the flood to be under way: the helper's own start-up (a Python
                    # interpreter importing this module) must not be what the victim measures.
                    assert flooding.stdout is not None and flooding.stdout.readline().strip() == "flooding"
                    time.sleep(0.5)
                    loaded.append(asyncio.run(victim_latencies(url, victim_key, photo, args.victim)))
                    out, _ = flooding.communicate(timeout=seconds + 60)
                    flood_codes.append(out.strip())
            # What the flood costs the gateway itself, without the victim: its CPU over 4 s.
            drip_url = f"http://127.0.0.1:{drip_port}/drip.jpg"
            with helper("_flood", url, flood_key, drip_url, str(args.flood), "6") as flooding:
                assert flooding.stdout is not None and flooding.stdout.readline().strip() == "flooding"
                before = cpu_seconds(pid)
                time.sleep(4)
                flood_cpu = (cpu_seconds(pid) - before) / 4
                flooding.communicate(timeout=60)
            idle_before = cpu_seconds(pid)
            time.sleep(4)
            idle_cpu = (cpu_seconds(pid) - idle_before) / 4
            unloaded_p99 = statistics.median(p99(r) for r in unloaded)
            loaded_p99 = statistics.median(p99(r) for r in loaded)
            result["flood"] = {
                "flood_urls": args.flood,
                "victim_requests": args.victim,
                "rounds": args.rounds,
                "unloaded_p50_ms": round(statistics.median(statistics.median(r) for r in unloaded) * 1000, 2),
                "unloaded_p99_ms": round(unloaded_p99 * 1000, 2),
                "loaded_p50_ms": round(statistics.median(statistics.median(r) for r in loaded) * 1000, 2),
                "loaded_p99_ms": round(loaded_p99 * 1000, 2),
                "p99_ratio": round(loaded_p99 / unloaded_p99, 2),
                "flood_codes_per_round": flood_codes,
                "gateway_cpu_share_flooded": round(flood_cpu, 3),
                "gateway_cpu_share_idle": round(idle_cpu, 3),
                "load_average_1m": os.getloadavg()[0],
            }
    rss, fl = result["rss"], result["flood"]
    print("\nagainst vlgw serve (gateway + decode workers):")
    print(f"  warm RSS                         {rss['warm_mb']:8.1f} MB")
    print(f"                                   by process {rss['warm_by_process_mb']}")
    print(f"  {args.bombs} concurrent bombs, peak growth   {rss['bombs_growth_mb']:8.1f} MB   (goal < 300)")
    after = rss["after_vs_warm_mb"]
    print(f"  {args.settle:g} s after the hostile burst      {after:+8.1f} MB vs warm (goal within 50)")
    print(f"                                   by process {rss['after_by_process_mb']}")
    print(f"  responses >= 500                 {rss['responses_5xx']:8d}")
    print(f"  victim photo p50/p99 unloaded    {fl['unloaded_p50_ms']:8.2f} / {fl['unloaded_p99_ms']:.2f} ms")
    print(f"    (medians of {fl['rounds']} rounds of {fl['victim_requests']} photos each)")
    loaded = f"{fl['loaded_p50_ms']:8.2f} / {fl['loaded_p99_ms']:.2f} ms"
    print(f"  victim photo p50/p99, {args.flood} slow URLs {loaded}")
    print(f"  p99 ratio                        {fl['p99_ratio']:8.2f}x   (goal <= 2)")
    share = f"{fl['gateway_cpu_share_flooded']:.3f} (idle {fl['gateway_cpu_share_idle']:.3f})"
    print(f"  gateway CPU, cores, flood only   {share}; machine load average {fl['load_average_1m']:.1f}")
    return result


def main() -> None:
    if sys.argv[1:2] == ["_drip"]:
        asyncio.run(drip_main())
        return
    if sys.argv[1:2] == ["_flood"]:
        url, key, image_url, size, seconds = sys.argv[2:7]
        asyncio.run(flood_main(url, key, image_url, int(size), float(seconds)))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait after the hostile burst")
    parser.add_argument("--bombs", type=int, default=8, help="decode bombs sent at once")
    parser.add_argument("--flood", type=int, default=24, help="slow image URLs kept open by one key")
    parser.add_argument("--victim", type=int, default=100, help="photos the other key sends per round")
    parser.add_argument("--rounds", type=int, default=3, help="unloaded/flooded rounds (medians reported)")
    parser.add_argument("--runs", type=int, default=21, help="runs per image for the process-hop figures")
    parser.add_argument("--quick", action="store_true", help="smaller candidates (4000 px start, not 8000)")
    parser.add_argument("--skip-serve", action="store_true", help="part A only")
    parser.add_argument("--skip-per-image", action="store_true", help="part B only")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    items = corpus(args.quick)
    report: dict[str, Any] = {
        "settings": {k: v for k, v in SETTINGS.model_dump().items() if k.startswith("image_")}
    }
    if not args.skip_per_image:
        report["per_image"] = part_a(items)
        report["hop"] = hop_overhead(args.runs)
    if not args.skip_serve:
        report.update(part_b(items, args))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
