"""The GPU cost model's arithmetic: prefill time from a measured table, decode time per step.

Source of the table: UPSTREAM.md, "How an image becomes tokens": the Qwen3-VL-8B architecture
(random weights, bf16) under Hugging Face transformers 5.17 with SDPA attention on one H200,
batch 1, median of 5 runs. Not vLLM: its ~60-90 ms floor is Hugging Face's per-call overhead.
Decode was not measured there; its default here is an assumption (docs/emulator-cost-model.md).

Between measured points the time is interpolated linearly in log(tokens)-log(ms) space (a
power law per segment, which is how attention and MLP costs grow); below the first point it is
the first point's time (the floor), above the last it extends the last segment's power law.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

# (visual tokens, vision encoder ms, whole prefill ms): the sweep, square images, short prompt.
IMAGE_SWEEP: tuple[tuple[int, float, float], ...] = (
    (64, 33, 90),
    (256, 31, 90),
    (506, 31, 88),
    (1024, 30, 88),
    (2025, 61, 135),
    (4096, 152, 298),
    (8100, 507, 799),
    (11881, 1025, 1463),
)
# (text tokens, whole prefill ms): text-only prefill on the same machine.
TEXT_ONLY: tuple[tuple[int, float], ...] = ((128, 59), (1024, 58), (4096, 136))
# The sweep's own prompt was short (well under TEXT_ONLY's first point), so text up to this
# many tokens is taken as already inside the sweep's times.
TEXT_INCLUDED = TEXT_ONLY[0][0]


class PowerLawTable:
    """Piecewise power-law interpolation through measured (tokens, ms) points."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        xs = [float(x) for x, _ in points]
        if len(xs) < 2 or any(b <= a for a, b in itertools.pairwise(xs)) or xs[0] <= 0:
            raise ValueError("need two or more points with strictly increasing positive x")
        self.points = [(float(x), float(y)) for x, y in points]
        self._xs = xs

    def __call__(self, x: float) -> float:
        """Interpolated milliseconds at ``x`` tokens."""
        points = self.points
        if x <= points[0][0]:
            return points[0][1]
        index = min(bisect.bisect_left(self._xs, x), len(points) - 1)
        (x0, y0), (x1, y1) = points[index - 1], points[index]
        slope = math.log(y1 / y0) / math.log(x1 / x0)
        return y0 * math.pow(x / x0, slope)


_WHOLE = PowerLawTable([(v, whole) for v, _, whole in IMAGE_SWEEP])
_ENCODER = PowerLawTable([(v, encoder) for v, encoder, _ in IMAGE_SWEEP])
_TEXT = PowerLawTable(TEXT_ONLY)


def prefill_ms(visual: Sequence[int], text_tokens: int) -> float:
    """Modelled prefill time of one request: ``visual`` tokens per image still to encode, plus text.

    One image with a short prompt is the sweep's whole-prefill time at its visual tokens; no
    image is the text-only time. Several images are encoded one by one (the encoder's attention
    is per image), so the encoder part is summed per image while the language model sees them
    all: ``whole(V) - encoder(V) + sum(encoder(v_i))`` with V their total. Text beyond the
    sweep's short prompt adds what the text-only points say it costs above their floor.
    """
    images = [v for v in visual if v > 0]
    if not images:
        return _TEXT(text_tokens)
    total = sum(images)
    time = _WHOLE(total) - _ENCODER(total) + sum(_ENCODER(v) for v in images)
    if text_tokens > TEXT_INCLUDED:
        time += max(0.0, _TEXT(text_tokens) - _TEXT(TEXT_INCLUDED))
    return time


@dataclass(frozen=True, slots=True)
class DecodeCost:
    """One decode step: read the weights once, plus the KV of every sequence in the batch.

    Decode is memory-bound: ``base_ms`` is the weight read, ``ms_per_1k_kv`` the time to read
    1,000 tokens of KV (all sequences' contexts are attended every step).
    """

    base_ms: float
    ms_per_1k_kv: float

    def step_ms(self, context_tokens: int) -> float:
        """Milliseconds of one step producing a token for each sequence, ``context_tokens`` in all."""
        return self.base_ms + self.ms_per_1k_kv * context_tokens / 1000
