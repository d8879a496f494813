"""Frame counts, frame sizes and the token estimate, against hand-worked examples."""

from __future__ import annotations

import pytest

from gateway.settings import Settings
from gateway.video.geometry import frame_count, plan, timestamp_tokens, video_prompt_tokens
from gateway.video.limits import VideoLimits

LIMITS = VideoLimits.from_settings(Settings())


@pytest.mark.parametrize(
    ("duration", "frames"),
    [
        (None, 60),  # unknown: planned for the longest clip
        (0.04, 2),  # one frame still makes a pair
        (1.0, 2),  # targets 0, 0.5 s
        (1.02, 2),  # an audio pre-roll past 1 s buys no frame
        (1.2, 4),  # 0, 0.5, 1.0 s: three, padded to a pair
        (3.0, 6),
        (29.9, 60),
        (30.4, 60),  # within the duration slack: capped at the frame limit
    ],
)
def test_frame_count(duration: float | None, frames: int) -> None:
    assert frame_count(duration, LIMITS) == frames


def test_sizes_follow_the_budgets() -> None:
    # 10 s of 1080p: 20 frames, each under the 409,600-pixel frame budget.
    assert (plan(1920, 1080, 10.0, LIMITS).width, plan(1920, 1080, 10.0, LIMITS).height) == (832, 480)
    # 30 s: 60 frames share 12,582,912 pixels, 209,715 each: 608x320.
    long = plan(1920, 1080, 30.0, LIMITS)
    assert (long.frames, long.width, long.height) == (60, 608, 320)
    assert long.frames * long.width * long.height <= LIMITS.total_pixel_budget
    # Small clips keep their size on the grid; portrait stays portrait.
    assert (plan(240, 320, 1.0, LIMITS).width, plan(240, 320, 1.0, LIMITS).height) == (256, 320)


def test_timestamp_tokens() -> None:
    # "<0.2 seconds>": <, 0, ., 2, " seconds", > ; "<12.2 seconds>" has one digit more.
    assert timestamp_tokens(0.25) == 6
    assert timestamp_tokens(12.25) == 7
    assert timestamp_tokens(100.0) == 8


def test_video_prompt_tokens() -> None:
    # 6 frames of 320x256 at 2 fps: 3 pairs at 0.25, 1.25, 2.25 s; 10x8 tokens each, 2 framing, 6 text.
    assert video_prompt_tokens(6, 256, 320, 2.0) == 3 * (80 + 2 + 6)
    # 60 frames of 608x320: 30 pairs of 19x10 grids at k + 0.25 s; from 10.2 s on, two digits.
    expected = 30 * (190 + 2) + 10 * 6 + 20 * 7
    assert video_prompt_tokens(60, 320, 608, 2.0) == expected
