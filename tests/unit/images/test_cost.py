"""What admission prices a decode at, from headers alone (cost.py), and the /proc facts (memory.py).

bench/hostile.py measures the real peaks against these estimates; here the structure: what each
format's decoder needs on top of the pixels is counted, and a JPEG's draft scale is used."""

from __future__ import annotations

import os

from gateway.images import memory
from gateway.images.cost import BYTES_PER_PIXEL, DECODED_COPIES, decode_memory
from gateway.images.normalise import PixelLimits, checked_parse
from tests.unit.images import bombs, factory

LIMITS = PixelLimits(
    pixel_budget=1_310_720, min_pixels=65_536, max_pixels=50_000_000, max_side=20_000, jpeg_quality=90
)


def estimate(data: bytes) -> int:
    return decode_memory(checked_parse(data, LIMITS), len(data), LIMITS)


def test_progressive_jpeg_pays_for_its_whole_image_coefficient_buffer() -> None:
    baseline = checked_parse(factory.flat(4000, 3000), LIMITS)
    progressive = checked_parse(factory.encode(factory.halves(4000, 3000), "JPEG", progressive=True), LIMITS)
    assert baseline.decoder_bytes == 0 and not baseline.progressive
    # 4:2:0: per 16x16 MCU, 6 blocks of 64 16-bit coefficients = 3 bytes a pixel, MCU-padded.
    assert progressive.progressive and progressive.decoder_bytes == 250 * 188 * 6 * 128
    assert progressive.scans == 10


def test_jpeg_estimate_uses_the_draft_scale() -> None:
    small = estimate(factory.flat(2000, 1500))  # decoded at 1/1 (the target is 1312x992)
    large = estimate(factory.flat(8000, 6000))  # 16x the pixels, decoded at 1/4
    assert large < 2 * small


def test_webp_canvas_priced_from_the_header() -> None:
    bomb = bombs.webp_canvas_bomb(3000, 2000)
    parsed = checked_parse(bomb, LIMITS)
    assert parsed.decoder_bytes == 2 * 4 * 3000 * 2000 and parsed.frames == 1
    assert estimate(bomb) >= parsed.decoder_bytes + DECODED_COPIES * BYTES_PER_PIXEL * 3000 * 2000


def test_heic_priced_from_its_declared_size() -> None:
    assert estimate(bombs.heic_declaring(30_000, 30_000)) > 10 * 1024**3


def test_proc_facts() -> None:
    assert memory.rss_bytes() > 10 * 1024 * 1024
    start = memory.cpu_seconds(os.getpid())
    assert start is not None
    spent = sum(i * i for i in range(3_000_000))  # ~0.2 s of CPU, well over one clock tick
    assert spent and (memory.cpu_seconds(os.getpid()) or 0) > start
    assert memory.cpu_seconds(2**22 + 12345) is None  # no such process
    memory.trim()
