"""Image quality pre-check on real photographs: confusion table per class, and the cost per photo.

    .venv/bin/python bench/precheck.py [--runs 15] [--dark 64 --bright 160 --blur 0.4 --min-side 64]

The corpus (deterministic, the same on every run):

* ``photo``: the real photographs vendored in tests/data/photos (SOURCES.md names each one's
  package, version, path and licence), as phones and cameras took them;
* renders of what apps send that a photo corpus lacks: ``receipt`` (thermal receipts in a real
  font, photographed on a table or filling the frame, paper ~240 grey), ``product`` (an object cut
  from a real photo on a pure-white studio background, with a soft shadow), ``screenshot``
  (light- and dark-mode app screens, PNG) and ``night`` (a dark street with lit windows and lamps);
* each clean image degraded: Gaussian blur (sigma 0.5 % and 1 % of the long side), motion blur
  (2 % and 4 % of the long side, at an angle), under-exposure (-4 EV in linear light, and
  ImageEnhance brightness x0.25), over-exposure (+2.5 EV, brightness x2.5), washed out (60 %
  haze toward white) and flat (ImageEnhance contrast x0.15). skimage's ``clock_motion`` is a
  real motion-blurred photograph.

Prints one row per (condition, kind) with how many images were judged ok / too_dark / too_bright /
blurry / too_small, the refusal rates, the measures of the closest calls, and the cost of
``measure()`` on a 12 MP photo (median of ``--runs``) next to a plain full decode of the same file,
measured in the same run.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageStat

from gateway.images.quality import QualityMeasures, QualityThresholds, measure, verdict

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data" / "photos"
BIG_PHOTO = PHOTOS / "lomiri-12mp-dragonfly.jpg"  # 4000x3000, the cost figure's input
REAL_DEGRADED = {"skimage-clock-motion.jpg": "blur_motion"}  # photographed blurred
KINDS = ("photo", "receipt", "product", "screenshot", "night")
VERDICTS = ("ok", "too_dark", "too_bright", "blurry", "too_small")


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # photo, receipt, product, screenshot, night
    condition: str  # clean or a degradation (see DEGRADATIONS)
    data: bytes
    expected: str = "ok"  # the verdict it should get


# --- the clean images ----------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(out, "JPEG", quality=quality)
    else:
        img.save(out, fmt)
    return out.getvalue()


def real_photos() -> Iterator[tuple[str, Image.Image]]:
    """The vendored photographs (tests/data/photos/SOURCES.md), except the 12 MP timing copy."""
    for path in sorted(PHOTOS.glob("*.jpg")):
        if path != BIG_PHOTO:
            with Image.open(path) as img:
                yield path.name, img.convert("RGB")


def font(size: int, *, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu (Debian fonts-dejavu-core) when installed, else the font Pillow ships (Aileron)."""
    try:
        return ImageFont.truetype("DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def camera(img: Image.Image, *, noise: float = 3.0) -> Image.Image:
    """What a phone adds to a scene: a little lens softness and sensor noise (sigma ``noise``)."""
    grain = Image.effect_noise(img.size, noise).convert("RGB")  # centred on 128
    return ImageChops.add(img.filter(ImageFilter.GaussianBlur(0.6)), grain, 1.0, -128)


def receipt(seed: int) -> Image.Image:
    """A thermal receipt photographed on a table (even seeds) or filling the frame (odd seeds)."""
    rng = random.Random(seed)
    width, height = (1200, 1600) if seed % 3 else (1536, 2048)
    fills = seed % 2 == 1
    paper_w = width if fills else int(width * rng.uniform(0.55, 0.75))
    paper_h = height if fills else int(height * rng.uniform(0.8, 0.95))
    # phones often blow white paper out: every third receipt's paper is clipped to 255
    paper_level = 275 if seed % 3 == 2 else rng.randrange(236, 252)
    paper = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize((paper_w, paper_h))
    paper = paper.point(lambda v: min(255, paper_level - 8 + v * 12 // 255)).convert("RGB")
    draw = ImageDraw.Draw(paper)
    size = max(18, paper_w // rng.randrange(22, 30))
    mono, big = font(size, mono=True), font(int(size * 1.5))
    ink = (rng.randrange(25, 70),) * 3
    margin, y = paper_w // 12, size * 2
    draw.text(
        (margin, y),
        rng.choice(("FAMILY MART", "全家便利店 FamilyMart", "CAFE ROMA", "SUPERMARKET 24")),
        ink,
        big,
    )
    y += size * 3
    items = ("Milk 1L", "Bread", "Coffee beans", "Apples 1kg", "Water x6", "Eggs 10", "Tea", "Rice 5kg")
    total = 0.0
    while y < paper_h - size * 8:
        price = rng.randrange(100, 5000) / 100
        total += price
        draw.text((margin, y), f"{rng.choice(items):<18}{price:>8.2f}", ink, mono)
        y += int(size * 1.6)
    draw.line((margin, y, paper_w - margin, y), ink, 2)
    draw.text((margin, y + size), f"{'TOTAL':<18}{total:>8.2f}", ink, mono)
    draw.text((margin, y + size * 3), "2026-11-29 12:34  #0042", ink, mono)
    if fills:
        scene = paper
    else:
        wood = tuple(rng.randrange(60, 140) for _ in range(3))
        scene = Image.new("RGB", (width, height), wood)
        grain = Image.effect_noise((width, height), 30).convert("RGB")
        scene = Image.blend(scene, grain, 0.15)
        paper = paper.rotate(rng.uniform(-4, 4), expand=True, fillcolor=wood)
        scene.paste(paper, ((width - paper.width) // 2, (height - paper.height) // 2))
    return camera(scene)


def product(seed: int, photos: list[Image.Image]) -> Image.Image:
    """An object cut from a real photograph on a pure-white studio background, with a soft shadow."""
    rng = random.Random(seed)
    width, height = (1200, 1200) if seed % 2 else (1600, 1200)
    source = photos[seed % len(photos)]
    obj_w = int(width * rng.uniform(0.3, 0.55))
    obj_h = int(obj_w * rng.uniform(0.9, 1.6))
    obj = source.resize((obj_w, obj_h), Image.Resampling.LANCZOS)
    mask = Image.new("L", (obj_w, obj_h), 0)
    shape = ImageDraw.Draw(mask)
    if seed % 3 == 0:
        shape.ellipse((0, 0, obj_w - 1, obj_h - 1), fill=255)
    else:
        shape.rounded_rectangle((0, 0, obj_w - 1, obj_h - 1), radius=obj_w // 6, fill=255)
    scene = Image.new("RGB", (width, height), (255, 255, 255))
    x, y = (width - obj_w) // 2, (height - obj_h) // 2
    shadow = Image.new("L", (width, height), 255)
    ImageDraw.Draw(shadow).ellipse(
        (x - obj_w // 10, y + obj_h - obj_h // 12, x + obj_w + obj_w // 10, y + obj_h + obj_h // 8), fill=190
    )
    shadow = shadow.filter(ImageFilter.GaussianBlur(width / 60))
    scene = ImageChops.multiply(scene, Image.merge("RGB", (shadow, shadow, shadow)))
    scene.paste(obj, (x, y), mask.filter(ImageFilter.GaussianBlur(1)))
    return scene  # studio shots are retouched: no grain on the white


def screenshot(seed: int) -> Image.Image:
    """An app screen (phone size, PNG): a list with titles, prices, icons; light or dark mode."""
    rng = random.Random(seed)
    width, height = rng.choice(((1170, 2532), (1080, 2400), (750, 1334)))
    dark = seed % 3 == 2
    bg, card, ink, sub = (
        ((0, 0, 0), (28, 28, 30), (255, 255, 255), (142, 142, 147))
        if dark
        else (
            (242, 242, 247),
            (255, 255, 255),
            (0, 0, 0),
            (110, 110, 115),
        )
    )
    img = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(img)
    unit = width // 20
    title, body, small = font(unit * 2), font(int(unit * 1.1)), font(int(unit * 0.8))
    draw.text((unit, unit * 3), rng.choice(("Orders", "我的订单", "Messages", "Settings")), ink, title)
    accent = rng.choice(((0, 122, 255), (52, 199, 89), (255, 59, 48), (255, 149, 0)))
    y = unit * 7
    while y < height - unit * 6:
        row = unit * 4
        draw.rounded_rectangle((unit, y, width - unit, y + row), radius=unit // 2, fill=card)
        draw.ellipse((unit * 2, y + unit, unit * 4, y + unit * 3), fill=accent)
        draw.text(
            (unit * 5, y + unit // 2), rng.choice(("Coffee beans", "Order #2931", "Delivered")), ink, body
        )
        draw.text(
            (unit * 5, y + unit * 2), f"{rng.randrange(1, 28)} Nov · ¥{rng.randrange(5, 500)}", sub, small
        )
        y += row + unit // 2
    draw.rectangle((0, height - unit * 4, width, height), fill=card)
    for i in range(4):
        cx = width * (2 * i + 1) // 8
        draw.ellipse((cx - unit, height - unit * 3, cx + unit, height - unit), fill=accent if i == 0 else sub)
    return img


def night(seed: int) -> Image.Image:
    """A street at night: dark sky and buildings, lit windows, street lamps with glow."""
    rng = random.Random(seed)
    width, height = (1600, 1200) if seed % 2 else (1200, 1600)
    sky = Image.linear_gradient("L").resize((width, height)).point(lambda v: 4 + v * 18 // 255)
    img = Image.merge("RGB", (sky, sky, sky.point(lambda v: v + 6)))
    draw = ImageDraw.Draw(img)
    x = 0
    while x < width:
        w, top = rng.randrange(width // 10, width // 4), rng.randrange(height // 4, height * 2 // 3)
        draw.rectangle((x, top, x + w, height), fill=(rng.randrange(6, 16),) * 3)
        for wy in range(top + 20, height - 40, 48):
            for wx in range(x + 12, x + w - 24, 36):
                if rng.random() < 0.3:
                    draw.rectangle((wx, wy, wx + 18, wy + 26), fill=(255, rng.randrange(180, 230), 120))
        x += w + rng.randrange(0, 20)
    glow = Image.new("RGB", (width, height), 0)
    glow_draw = ImageDraw.Draw(glow)
    for _ in range(rng.randrange(3, 7)):
        cx, cy, r = rng.randrange(width), rng.randrange(height // 2, height), rng.randrange(8, 20)
        glow_draw.ellipse((cx - r * 4, cy - r * 4, cx + r * 4, cy + r * 4), fill=(90, 70, 30))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 250, 225))
    img = ImageChops.add(img, glow.filter(ImageFilter.GaussianBlur(30)))
    return camera(img, noise=4.0)


# --- degradations (sizes relative to the long side) -----------------------------------------------


def _linear_exposure(img: Image.Image, stops: float) -> Image.Image:
    """Exposure change in linear light (sRGB decoded, scaled by 2**stops, clipped, re-encoded)."""

    def curve(v: int) -> int:
        c = v / 255
        lin = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        lin = min(1.0, lin * 2**stops)
        out = lin * 12.92 if lin <= 0.0031308 else 1.055 * lin ** (1 / 2.4) - 0.055
        return round(out * 255)

    return img.point([curve(v) for v in range(256)] * len(img.getbands()))


def _motion(img: Image.Image, length: float, angle: float) -> Image.Image:
    """A straight shake of ``length`` px at ``angle`` degrees (box blur along a rotated axis).

    The rotation's empty corners would smear black into the frame: the margin they reach is cut.
    """
    turned = img.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    smeared = turned.filter(ImageFilter.BoxBlur((length / 2, 0)))
    back = smeared.rotate(-angle, Image.Resampling.BILINEAR, expand=True)
    margin = math.ceil(length) + 2
    left, top = (back.width - img.width) // 2 + margin, (back.height - img.height) // 2 + margin
    return back.crop((left, top, left + img.width - 2 * margin, top + img.height - 2 * margin))


def _haze(img: Image.Image, amount: float) -> Image.Image:
    return Image.blend(img, Image.new(img.mode, img.size, (255,) * len(img.getbands())), amount)


DEGRADATIONS: dict[str, Callable[[Image.Image, random.Random], list[Image.Image]]] = {
    "blur_gauss": lambda img, rng: [
        img.filter(ImageFilter.GaussianBlur(max(img.size) * share)) for share in (0.005, 0.01)
    ],
    "blur_motion": lambda img, rng: [
        _motion(img, max(img.size) * share, rng.uniform(0, 180)) for share in (0.02, 0.04)
    ],
    "under": lambda img, rng: [_linear_exposure(img, -4), ImageEnhance.Brightness(img).enhance(0.25)],
    "over": lambda img, rng: [_linear_exposure(img, 2.5), ImageEnhance.Brightness(img).enhance(2.5)],
    "washed": lambda img, rng: [_haze(img, 0.6)],
    "flat": lambda img, rng: [ImageEnhance.Contrast(img).enhance(0.15)],
}
EXPECTED = {
    "blur_gauss": "blurry",
    "blur_motion": "blurry",
    "under": "too_dark",
    "over": "too_bright",
    "washed": "too_bright",
}


def expected_reason(condition: str, img: Image.Image) -> str:
    """What a degraded image should be refused as: a picture flattened around a light mean is
    washed out (too bright), around a dark one too dark; the others by EXPECTED."""
    if condition == "flat":
        return "too_bright" if ImageStat.Stat(img.convert("L")).mean[0] >= 128 else "too_dark"
    return EXPECTED[condition]


def clean_images(renders: int = 6) -> Iterator[tuple[str, str, Image.Image]]:
    """(name, kind, image) of every clean image: the real photographs, then the renders."""
    photos = []
    for name, img in real_photos():
        if name not in REAL_DEGRADED:
            photos.append(img)
            yield name, "photo", img
    for seed in range(renders):
        yield f"receipt-{seed}", "receipt", receipt(seed)
        yield f"product-{seed}", "product", product(seed, photos)
        yield f"screenshot-{seed}", "screenshot", screenshot(seed)
        yield f"night-{seed}", "night", night(seed)


def corpus(renders: int = 6) -> Iterator[Sample]:
    """Every clean image (as a JPEG; screenshots as PNG) and its degraded versions."""
    for name in REAL_DEGRADED:
        yield Sample(name, "photo", REAL_DEGRADED[name], (PHOTOS / name).read_bytes(), "blurry")
    for name, kind, img in clean_images(renders):
        fmt = "PNG" if kind == "screenshot" else "JPEG"
        yield Sample(name, kind, "clean", encode(img, fmt))
        rng = random.Random(name)
        for condition, degrade in DEGRADATIONS.items():
            expected = expected_reason(condition, img)
            for index, bad in enumerate(degrade(img, rng)):
                yield Sample(f"{name}~{condition}{index}", kind, condition, encode(bad, fmt), expected)


# --- report ---------------------------------------------------------------------------------------


def judge(samples: list[Sample], thresholds: QualityThresholds) -> list[tuple[Sample, QualityMeasures, str]]:
    out = []
    for sample in samples:
        measures = measure(sample.data)
        out.append((sample, measures, verdict(measures, thresholds) or "ok"))
    return out


def confusion(judged: list[tuple[Sample, QualityMeasures, str]]) -> list[str]:
    """A Markdown table: per (condition, kind), how many images got each verdict."""
    rows = [
        "| condition | kind | images | " + " | ".join(VERDICTS) + " | right |",
        "|---" * (4 + len(VERDICTS)) + "|",
    ]
    groups: dict[tuple[str, str], Counter[str]] = {}
    for sample, _, got in judged:
        counts = groups.setdefault((sample.condition, sample.kind), Counter())
        counts[got] += 1
        counts["right"] += got == sample.expected
    order = ["clean", *DEGRADATIONS]
    for condition, kind in sorted(groups, key=lambda key: (order.index(key[0]), KINDS.index(key[1]))):
        counts = groups[condition, kind]
        total = sum(counts[v] for v in VERDICTS)
        cells = " | ".join(str(counts[v]) for v in VERDICTS)
        rows.append(f"| {condition} | {kind} | {total} | {cells} | {counts['right']}/{total} |")
    return rows


def rates(judged: list[tuple[Sample, QualityMeasures, str]]) -> dict[str, tuple[int, int]]:
    """(hits, total): clean refused, degraded refused, degraded refused with the expected reason."""
    clean = [got for sample, _, got in judged if sample.condition == "clean"]
    degraded = [(sample.expected, got) for sample, _, got in judged if sample.condition != "clean"]
    return {
        "clean refused": (sum(got != "ok" for got in clean), len(clean)),
        "degraded refused": (sum(got != "ok" for _, got in degraded), len(degraded)),
        "degraded, right reason": (sum(want == got for want, got in degraded), len(degraded)),
    }


def cost(runs: int) -> list[str]:
    """Median time of measure() on the 12 MP photo, and on the copy intake hands over (1.3 MP)."""
    big = BIG_PHOTO.read_bytes()
    with Image.open(BIG_PHOTO) as img:
        intake = encode(img.resize((1322, 992), Image.Resampling.LANCZOS), quality=90)
    lines = []
    for label, data in (
        ("12 MP JPEG (4000x3000, 1.7 MB)", big),
        ("after intake (1322x992 JPEG q90)", intake),
    ):
        measured, decoded = [], []
        for _ in range(runs):
            started = time.perf_counter()
            measure(data)
            measured.append(time.perf_counter() - started)
            started = time.perf_counter()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
            decoded.append(time.perf_counter() - started)
        m, d = statistics.median(measured) * 1000, statistics.median(decoded) * 1000
        lines.append(
            f"{label}: measure() {m:.1f} ms, full decode {d:.1f} ms (ratio {m / d:.2f}), median of {runs}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = QualityThresholds()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--renders", type=int, default=6, help="renders of each kind")
    parser.add_argument("--dark", type=float, default=defaults.dark)
    parser.add_argument("--bright", type=float, default=defaults.bright)
    parser.add_argument("--blur", type=float, default=defaults.blur)
    parser.add_argument("--min-side", type=int, default=defaults.min_side)
    parser.add_argument("--verbose", action="store_true", help="print the measures of every image")
    parser.add_argument("--cost-only", action="store_true", help="only time measure() (no corpus)")
    args = parser.parse_args()
    if args.cost_only:
        print("\n".join(cost(args.runs)))
        return
    thresholds = QualityThresholds(dark=args.dark, bright=args.bright, blur=args.blur, min_side=args.min_side)

    judged = judge(list(corpus(args.renders)), thresholds)
    print(f"{len(judged)} images, {thresholds}\n")
    print("\n".join(confusion(judged)))
    print()
    for label, (hits, total) in rates(judged).items():
        print(f"{label}: {hits}/{total} = {hits / total:.1%}")
    wrong = [(s, m, got) for s, m, got in judged if got != s.expected]
    shown = judged if args.verbose else wrong
    if shown:
        print("\n" + ("every image:" if args.verbose else "judged wrong:"))
    for sample, m, got in shown:
        print(
            f"  {sample.name:40s} {sample.condition:11s} -> {got:10s} shadows {m.shadows:3d}"
            f" median {m.median:3d} highlights {m.highlights:3d} focus {m.focus:.2f}"
            f" bright detail {m.bright_detail:4.1f} on {m.bright_detail_share:.2f}"
        )
    print()
    print("\n".join(cost(args.runs)))


if __name__ == "__main__":
    main()
