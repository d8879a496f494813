"""Image intake benchmark: CPU time per image, URL vs base64 latency, token and byte savings.

    .venv/bin/python bench/images.py --runs 21

Pins itself to one CPU (``--cpu``), generates its inputs (a 12 MP photo with gradients, shapes,
texture and sensor noise; a 1080p PNG screenshot; a ~200 KB phone photo) and reports medians:

* ``cpu``: ``ImageIntake.process`` on the calling thread (base64 decode, container walk,
  validation, resize, encode, hash): the CPU one image costs, on one core.
* ``baseline``: the obvious way, measured in the same run: full decode, bicubic resize to the
  same size, JPEG encode (PNG for the screenshot).
* ``base64`` / ``url``: ``ImageIntake.prepare`` end to end (thread pool; URL from a loopback server).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from gateway.images import ImageIntake, visual_tokens
from gateway.images.normalise import parse
from gateway.images.refs import decode_base64
from gateway.settings import Settings


def make_photo(width: int, height: int, *, quality: int = 90, seed: int = 7, grain: float = 10) -> bytes:
    """A photo-like JPEG: gradients, overlapping shapes, blur, fine texture, sensor grain."""
    rng = random.Random(seed)
    base = Image.merge(
        "RGB", [Image.linear_gradient("L").rotate(a).resize((width, height)) for a in (0, 90, 180)]
    )
    draw = ImageDraw.Draw(base)
    for _ in range(150):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(width // 80, width // 6)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r // 2, x + r, y + r), fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(width / 800))
    texture = Image.effect_noise((width // 4, height // 4), 60).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    base = Image.blend(base, Image.merge("RGB", [texture] * 3), 0.15)
    noise = Image.merge("RGB", [Image.effect_noise((width, height), grain) for _ in range(3)])
    base = ImageChops.add(base, noise, scale=1.0, offset=-128)
    out = io.BytesIO()
    base.save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_screenshot(width: int = 1920, height: int = 1080) -> bytes:
    """A UI-like PNG: flat panels, lines of text, icons."""
    rng = random.Random(3)
    img = Image.new("RGB", (width, height), (248, 248, 250))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 64), fill=(32, 96, 200))
    draw.rectangle((0, 64, 280, height), fill=(236, 238, 242))
    for row in range(90, height - 20, 22):
        x = 300 + rng.randrange(0, 40)
        words = " ".join(
            "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randrange(2, 9))) for _ in range(18)
        )
        draw.text((x, row), words, fill=(30, 30, 30))
    for _ in range(30):
        x, y = rng.randrange(20, 240), rng.randrange(80, height - 40)
        draw.ellipse((x, y, x + 24, y + 24), fill=(rng.randrange(256), 120, 200))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def amedian_ms(fn: Callable[[], Awaitable[Any]], runs: int) -> float:
    await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def baseline(data: bytes, size: tuple[int, int], fmt: str) -> None:
    """Full decode, bicubic resize, encode: the straightforward normalisation."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        small = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    small.save(io.BytesIO(), fmt, **({"quality": 90} if fmt == "JPEG" else {}))


async def serve(routes: dict[str, bytes]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        body = routes[head.split(b" ")[1].decode()]
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def measure_case(
    intake: ImageIntake, index: int, data: bytes, port: int, runs: int
) -> tuple[int, int, int, float, float, float, float]:
    limits = intake.limits()
    text = base64.b64encode(data).decode()
    prepared = intake.process(decode_base64(text), text, "base64", limits)
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    cpu = median_ms(lambda: intake.process(decode_base64(text), text, "base64", limits), runs)
    fmt = "PNG" if prepared.mime == "image/png" else "JPEG"
    size = (prepared.width, prepared.height)
    base = median_ms(lambda: baseline(data, size, fmt), max(3, runs // 3))
    as_b64 = await amedian_ms(lambda: intake.prepare([text]), runs)
    url = f"http://127.0.0.1:{port}/{index}"
    as_url = await amedian_ms(lambda: intake.prepare([url]), runs)
    tokens_in = visual_tokens(height, width) + 2  # what vLLM at its defaults would spend
    return len(prepared.data), tokens_in, prepared.visual_tokens, cpu, base, as_b64, as_url


def breakdown(big: bytes, small: bytes, runs: int, intake: ImageIntake) -> None:
    big_text = base64.b64encode(big).decode()

    def draft_decode() -> Image.Image:
        image = Image.open(io.BytesIO(big))
        image.draft("RGB", (1312, 960))
        image.load()
        return image

    half = draft_decode()
    resized = half.resize((1312, 960), Image.Resampling.BICUBIC)
    rows = [
        (f"base64 decode ({len(big_text)} chars)", lambda: decode_base64(big_text)),
        ("full decode (baseline)", lambda: Image.open(io.BytesIO(big)).load()),
        (f"draft decode at 1/2 {half.size}", draft_decode),
        ("bicubic resize to 1312x960", lambda: half.resize((1312, 960), Image.Resampling.BICUBIC)),
        ("JPEG encode q90", lambda: resized.save(io.BytesIO(), "JPEG", quality=90)),
    ]
    print("\nwhere the 12 MP photo's time goes (ms):")
    for label, fn in rows:
        print(f"  {label:36} {median_ms(fn, runs):7.1f}")
    text = base64.b64encode(small).decode()
    limits = intake.limits()
    rows = [
        ("base64 decode (strict)", lambda: decode_base64(text)),
        ("container walk + metadata strip", lambda: parse(small)),
        ("sha256", lambda: hashlib.sha256(small).hexdigest()),
        (
            "whole process() incl. Pillow header",
            lambda: intake.process(decode_base64(text), text, "base64", limits),
        ),
    ]
    print("\nhot path of the ~200 KB passthrough photo (ms):")
    for label, fn in rows:
        print(f"  {label:36} {median_ms(fn, runs * 10):7.3f}")


async def run(args: argparse.Namespace) -> None:
    cases = {
        "12 MP photo (4032x3024 JPEG q90)": make_photo(4032, 3024),
        "12 MP photo, less detail (JPEG q85)": make_photo(4032, 3024, quality=85, grain=4),
        "1080p screenshot (PNG)": make_screenshot(),
        "phone photo ~200 KB (1024x768 JPEG)": make_photo(1024, 768, quality=88, grain=7),
    }
    server = await serve({f"/{i}": data for i, data in enumerate(cases.values())})
    port = server.sockets[0].getsockname()[1]
    settings = Settings(image_allow_private_urls=True, image_allowed_ports=[port], image_workers=1)
    intake = ImageIntake(settings)
    cpus = sorted(os.sched_getaffinity(0))
    print(f"Python {sys.version.split()[0]}, Pillow {Image.__version__}, pinned to CPU {cpus}")
    print(
        f"budget {settings.image_pixel_budget} px, JPEG q{settings.image_jpeg_quality}, "
        f"medians of {args.runs} runs"
    )
    print(
        f"\n{'image':37} {'bytes in':>9} {'bytes out':>9} {'tokens in -> out':>16} "
        f"{'cpu ms':>7} {'baseline':>8} {'base64':>7} {'url':>7}"
    )
    for index, (name, data) in enumerate(cases.items()):
        out, tok_in, tok_out, cpu, base, as_b64, as_url = await measure_case(
            intake, index, data, port, args.runs
        )
        print(
            f"{name:37} {len(data):>9} {out:>9} {tok_in:>7} -> {tok_out:<6} "
            f"{cpu:>7.2f} {base:>8.1f} {as_b64:>7.2f} {as_url:>7.2f}"
        )
    breakdown(
        cases["12 MP photo (4032x3024 JPEG q90)"],
        cases["phone photo ~200 KB (1024x768 JPEG)"],
        args.runs,
        intake,
    )
    server.close()
    await intake.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per measurement (median reported)")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    args = parser.parse_args()
    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
