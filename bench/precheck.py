"""Image quality pre-check: precision/recall per class and cost, on a generated sample set.

    .venv/bin/python bench/precheck.py [--per-class 40] [--dark 40 --bright 225 --blur 60 --min-side 64]

The sample set is deterministic (fixed seeds): sharp photo-like JPEGs from tests/images.photo_jpeg
at phone-ish sizes with mild exposure jitter ("ok"), and from the same kind of photos: dark
(brightness x0.08-0.25), overexposed (x2.2-4), blurred (Gaussian radius 2-6) and tiny (shorter
side 16-56 px) variants. Prints the measure distributions, a per-class precision/recall table, the
false-positive rate on the sharp normal photos, and the median cost per image. The thresholds'
defaults (GATEWAY_PRECHECK_*) and docs/precheck.md come from this script's output.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from gateway.images.quality import QualityThresholds, measure, verdict
from tests.images import photo_jpeg

CLASSES = ("ok", "too_dark", "too_bright", "blurry", "too_small")
SIZES = ((1024, 768), (768, 1024), (1280, 960), (640, 480), (1600, 1200), (960, 1280))


@dataclass(frozen=True)
class Sample:
    label: str
    seed: int
    data: bytes
    kind: str = "photo"  # "document": a photographed receipt/page (light paper, dark text)


def _encode(img: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def samples(per_class: int = 40) -> Iterator[Sample]:
    """The generated set, ``per_class`` images of each class, the same on every run."""
    for seed in range(per_class):
        rng = random.Random(seed)
        width, height = SIZES[seed % len(SIZES)]
        base = Image.open(io.BytesIO(photo_jpeg(width, height, seed=seed)))
        base.load()
        yield Sample("ok", seed, _encode(ImageEnhance.Brightness(base).enhance(rng.uniform(0.7, 1.3))))
        yield Sample(
            "too_dark", seed, _encode(ImageEnhance.Brightness(base).enhance(rng.uniform(0.08, 0.25)))
        )
        yield Sample(
            "too_bright", seed, _encode(ImageEnhance.Brightness(base).enhance(rng.uniform(3.0, 5.0)))
        )
        yield Sample("blurry", seed, _encode(base.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 6.0)))))
        short = rng.randrange(16, 57)
        scale = short / min(width, height)
        tiny = base.resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS
        )
        yield Sample("too_small", seed, _encode(tiny))
        if seed % 2 == 0:
            yield Sample("ok", seed, document_jpeg(width, height, seed=seed), kind="document")


def document_jpeg(width: int, height: int, *, seed: int) -> bytes:
    """A photographed page or receipt: light, slightly uneven paper with lines of dark "text"."""
    rng = random.Random(seed)
    paper = rng.randrange(195, 236)
    img = Image.linear_gradient("L").resize((width, height)).point(lambda v: paper - 25 + v * 25 // 255)
    draw = ImageDraw.Draw(img)
    line = max(8, height // 40)
    for y in range(line * 2, height - line * 2, line * 3):
        x = width // 8
        while x < width * rng.randrange(4, 8) // 8:
            word = rng.randrange(line, line * 4)
            draw.rectangle((x, y, x + word, y + line * 2 // 3), fill=rng.randrange(10, 60))
            x += word + line
    noise = Image.effect_noise((width, height), 12)
    return _encode(Image.blend(img, noise.point(lambda v: v - 128 + paper), 0.15))


@dataclass(frozen=True)
class ClassScore:
    label: str
    support: int
    predicted: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.support if self.support else 1.0


def score(set_: list[Sample], thresholds: QualityThresholds) -> dict[str, ClassScore]:
    """Per-class precision/recall of the pre-check's verdicts ("ok" = not refused)."""
    pairs = [(s.label, verdict(measure(s.data), thresholds) or "ok") for s in set_]
    return {
        label: ClassScore(
            label,
            support=sum(1 for truth, _ in pairs if truth == label),
            predicted=sum(1 for _, guess in pairs if guess == label),
            correct=sum(1 for truth, guess in pairs if truth == guess == label),
        )
        for label in CLASSES
    }


def _percentiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=20, method="inclusive")
    median = statistics.median(values)
    low, high = min(values), max(values)
    return f"min {low:8.1f}  p5 {q[0]:8.1f}  median {median:8.1f}  p95 {q[-1]:8.1f}  max {high:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, default=40)
    defaults = QualityThresholds()
    parser.add_argument("--dark", type=float, default=defaults.dark)
    parser.add_argument("--bright", type=float, default=defaults.bright)
    parser.add_argument("--blur", type=float, default=defaults.blur)
    parser.add_argument("--min-side", type=int, default=defaults.min_side)
    args = parser.parse_args()
    thresholds = QualityThresholds(dark=args.dark, bright=args.bright, blur=args.blur, min_side=args.min_side)

    set_ = list(samples(args.per_class))
    print(f"samples: {len(set_)} ({args.per_class} per class), thresholds: {thresholds}\n")
    print("measures by class (luminance 0-255 / variance of the Laplacian):")
    for label in CLASSES:
        measures = [measure(s.data) for s in set_ if s.label == label]
        print(f"  {label:10s} luminance  {_percentiles([m.luminance for m in measures])}")
        print(f"  {'':10s} sharpness  {_percentiles([m.sharpness for m in measures])}")

    scores = score(set_, thresholds)
    print("\n| class | images | judged so | precision | recall |")
    print("|---|---:|---:|---:|---:|")
    for s in scores.values():
        print(f"| {s.label} | {s.support} | {s.predicted} | {s.precision:.3f} | {s.recall:.3f} |")
    for kind in ("photo", "document"):
        normal = [s for s in set_ if s.label == "ok" and s.kind == kind]
        refused = sum(1 for s in normal if verdict(measure(s.data), thresholds) is not None)
        rate = refused / len(normal)
        print(f"\nfalse-positive rate on sharp normal {kind}s: {refused}/{len(normal)} = {rate:.3f}")

    costs: list[float] = []
    photos = [s.data for s in set_ if s.label == "ok"]
    for data in photos * 3:
        started = time.perf_counter()
        measure(data)
        costs.append(time.perf_counter() - started)
    print(f"cost per photo (measure, median of {len(costs)}): {statistics.median(costs) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
