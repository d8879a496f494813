"""max_video_tokens: the admission charge is at least what any clip's frame plan costs.

Inputs: a grid of frame sizes (square to the 200:1 limit, tiny to 4K) and durations, at the
default limits and at budgets near the 4096-pixel floor, where smart_resize rounds up.
"""

from __future__ import annotations

import itertools

import pytest

from gateway.settings import Settings
from gateway.video import max_video_tokens
from gateway.video.geometry import plan, video_prompt_tokens
from gateway.video.limits import VideoLimits

SIDES = [16, 33, 64, 100, 240, 481, 720, 1080, 1920, 3200]
DURATIONS = [None, 0.2, 0.9, 1.4, 4.0, 7.7, 15.0, 20.0, 29.9]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"video_frame_pixel_budget": 4096, "video_total_pixel_budget": 8192},
        {"video_frame_pixel_budget": 8000, "video_total_pixel_budget": 100_000},
        {"video_sample_fps": 1.0, "video_max_frames": 30},
    ],
    ids=["defaults", "floor", "tight-total", "one-fps"],
)
def test_no_clip_costs_more_than_the_bound(overrides: dict[str, float]) -> None:
    limits = VideoLimits.from_settings(Settings(_env_file=None, **overrides))  # type: ignore[call-arg]
    bound = max_video_tokens(limits)
    costs = []
    for width, height, duration in itertools.product(SIDES, SIDES, DURATIONS):
        frame_plan = plan(width, height, duration, limits)
        costs.append(
            video_prompt_tokens(frame_plan.frames, frame_plan.height, frame_plan.width, limits.sample_fps)
        )
    for width in (6400, 3200):  # 200:1, and within it: a side floored at 32 px
        frame_plan = plan(width, 32, 30.0, limits)
        costs.append(
            video_prompt_tokens(frame_plan.frames, frame_plan.height, frame_plan.width, limits.sample_fps)
        )
    assert max(costs) <= bound


def test_bound_at_the_defaults_is_a_real_clip() -> None:
    """At the defaults the bound is reached, not padded: a 30 s clip whose 60 frames of 128x1632
    fill the total pixel budget's share (209,715 pixels) almost exactly."""
    limits = VideoLimits.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    frame_plan = plan(112, 1632, 30.0, limits)
    assert (frame_plan.frames, frame_plan.width, frame_plan.height) == (60, 128, 1632)
    cost = video_prompt_tokens(frame_plan.frames, frame_plan.height, frame_plan.width, limits.sample_fps)
    assert cost == max_video_tokens(limits) == 6380
