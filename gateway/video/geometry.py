"""How many frames a clip becomes, at what size, and what they cost in Qwen3-VL tokens.

Frames are sampled at ``sample_fps`` from the clip's start, one every 1/fps seconds, as many as
its duration holds (a target in the last quarter interval is not worth a frame: container
durations overshoot by an audio pre-roll or a frame's display time), rounded up to an even
count (Qwen3-VL's temporal patch is 2 frames; the last frame repeats, as Qwen's own processor
pads), at most ``max_frames``. Each frame is sized with the images' ``smart_resize`` on the
32-px grid under the smaller of the per-frame budget and the total budget shared by all frames.

Tokens (UPSTREAM.md "Video"; transformers' Qwen3-VL processor): each pair of frames is written
as ``<t seconds>`` text, then ``<|vision_start|>``, (h/32)·(w/32) video tokens and
``<|vision_end|>``. ``t`` is the mean time of the pair's two frames from vLLM's point of view
(frame index / the fps vLLM is started with), printed with one decimal; Qwen's tokenizer splits
digits one by one, so ``<12.2 seconds>`` is ``<``, ``1``, ``2``, ``.``, ``2``, `` seconds``,
``>``: 4 tokens plus one per digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.constants import QWEN_MAX_ASPECT_RATIO, QWEN_PATCH_FACTOR
from gateway.images.geometry import AspectRatioError, smart_resize
from gateway.video.limits import VideoLimits, undecodable

TEMPORAL_PATCH = 2
PAIR_FRAMING_TOKENS = 2  # <|vision_start|> and <|vision_end|> around each pair
TIMESTAMP_TEXT_TOKENS = 4  # "<", ".", " seconds", ">" (digits counted one by one)
TAIL_SHARE = 0.25  # of a sampling interval: a target this close to the end is dropped
# Qwen3-VL's video processor floor on pixels (its ``size.shortest_edge``); frames stay above it.
VIDEO_MIN_PIXELS = 4096


@dataclass(frozen=True, slots=True)
class FramePlan:
    """Frames to sample and the size each is sent at (before rotation: coded orientation)."""

    frames: int
    width: int
    height: int

    def targets(self, fps: float) -> list[float]:
        """The clip time (seconds from the first frame) each sampled frame shows."""
        return [index / fps for index in range(self.frames)]


def frame_count(duration: float | None, limits: VideoLimits) -> int:
    """Frames sampled from a clip of ``duration`` seconds (unknown: the most allowed)."""
    if duration is None:
        return limits.max_frames
    count = max(1, math.ceil(duration * limits.sample_fps - TAIL_SHARE))
    count += count % TEMPORAL_PATCH
    return min(count, limits.max_frames)


def plan(width: int, height: int, duration: float | None, limits: VideoLimits) -> FramePlan:
    """The frame plan for a clip of ``width`` x ``height``; 40010 for an impossible aspect ratio."""
    frames = frame_count(duration, limits)
    budget = min(limits.frame_pixel_budget, limits.total_pixel_budget // frames)
    try:
        out_height, out_width = smart_resize(
            height, width, min_pixels=VIDEO_MIN_PIXELS, max_pixels=max(budget, VIDEO_MIN_PIXELS)
        )
    except AspectRatioError as exc:
        raise undecodable(f"video frame {width}x{height}: {exc}", "format") from None
    return FramePlan(frames, out_width, out_height)


def timestamp_tokens(seconds: float) -> int:
    """Tokens of the ``<t seconds>`` text before one frame pair."""
    return TIMESTAMP_TEXT_TOKENS + sum(ch.isdigit() for ch in f"{seconds:.1f}")


def video_prompt_tokens(frames: int, height: int, width: int, fps: float) -> int:
    """Prompt tokens a clip of ``frames`` frames of ``height`` x ``width`` costs (all pairs)."""
    grid = (height // QWEN_PATCH_FACTOR) * (width // QWEN_PATCH_FACTOR)
    pairs = math.ceil(frames / TEMPORAL_PATCH)
    total = 0
    for pair in range(pairs):
        first = pair * TEMPORAL_PATCH
        seconds = (first / fps + (first + TEMPORAL_PATCH - 1) / fps) / 2
        total += grid + PAIR_FRAMING_TOKENS + timestamp_tokens(seconds)
    return total


def max_video_tokens(limits: VideoLimits) -> int:
    """An upper bound of the prompt tokens any clip costs under ``limits``, known before intake
    (the tpm charge at admission): every even frame count up to ``max_frames``, each frame at the
    largest grid ``smart_resize`` can give under its pixel budget, plus every pair's framing and
    timestamp tokens."""
    worst = 0
    for frames in range(TEMPORAL_PATCH, limits.max_frames + 1, TEMPORAL_PATCH):
        budget = max(min(limits.frame_pixel_budget, limits.total_pixel_budget // frames), VIDEO_MIN_PIXELS)
        grid = max_grid(budget)
        total = 0
        for pair in range(frames // TEMPORAL_PATCH):
            first = pair * TEMPORAL_PATCH
            seconds = (first / limits.sample_fps + (first + TEMPORAL_PATCH - 1) / limits.sample_fps) / 2
            total += grid + PAIR_FRAMING_TOKENS + timestamp_tokens(seconds)
        worst = max(worst, total)
    return worst


def max_grid(max_pixels: int) -> int:
    """The most 32-px cells ``smart_resize(min_pixels=VIDEO_MIN_PIXELS, max_pixels=...)`` returns.

    Three ways past ``max_pixels / 1024``: a side floored at 32 px when scaling down a very
    narrow frame (the other side is then at most sqrt(max_pixels x ratio)), and both sides rounded
    up when scaling up to the floor (at most one cell more on each side of an area-4096 frame).
    """
    cell = QWEN_PATCH_FACTOR * QWEN_PATCH_FACTOR
    ratio = QWEN_MAX_ASPECT_RATIO
    narrow = math.isqrt(max_pixels * ratio) // QWEN_PATCH_FACTOR
    sides = math.sqrt(VIDEO_MIN_PIXELS) * (math.sqrt(ratio) + 1)  # h + w of an area-4096 frame, at most
    floor = math.ceil((VIDEO_MIN_PIXELS + QWEN_PATCH_FACTOR * sides + cell) / cell)
    return max(max_pixels // cell, narrow, floor)
