"""The emulator takes video parts like vLLM 0.33: JPEG sequences and containers, counted and described.

Clips are encoded in the tests with PyAV (tests/unit/video/clips.py); JPEG sequences are what
the gateway's own video intake produces from them.
"""

from __future__ import annotations

import argparse
import base64
import re
from collections.abc import Callable
from typing import Any

import pytest

from gateway.emulator.cli import add_arguments, config_from_args
from gateway.settings import Settings
from gateway.video import PreparedVideo, VideoIntake
from tests.unit.emulator.conftest import Emulator, image_bytes
from tests.unit.video import clips

# The flags docs/video.md gives vLLM: one video, JPEG sequences at the gateway's 2 fps, all frames kept.
VLLM_FLAGS = {"max_videos": 1, "video_fps": 2.0, "video_num_frames": -1}


def video_message(text: str, *urls: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "video_url", "video_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts}]


async def prepared(data: bytes) -> PreparedVideo:
    intake = VideoIntake(Settings())
    try:
        return await intake.prepare(base64.b64encode(data).decode())
    finally:
        await intake.aclose()


def container_uri(data: bytes, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def prompt_tokens(emulator: Emulator, messages: list[dict[str, Any]]) -> int:
    response = emulator.chat(messages=messages, max_tokens=8)
    assert response.status_code == 200, response.text
    return int(response.json()["usage"]["prompt_tokens"])


async def test_gateway_frames_cost_what_the_gateway_estimates(
    start_emulator: Callable[..., Emulator],
) -> None:
    emulator = start_emulator(**VLLM_FLAGS)
    for data in (clips.mp4(frames=90), clips.mp4(frames=24 * 25, fps=24, size=(640, 360))):
        video = await prepared(data)
        with_video = prompt_tokens(emulator, video_message("what happens?", video.data_uri))
        without = prompt_tokens(
            emulator, [{"role": "user", "content": [{"type": "text", "text": "what happens?"}]}]
        )
        assert with_video - without == video.visual_tokens


async def test_answer_describes_the_clip(start_emulator: Callable[..., Emulator]) -> None:
    emulator = start_emulator(answer_tokens=40, **VLLM_FLAGS)
    video = await prepared(clips.mp4(frames=90))  # 3 s: 6 frames; frame 0 red 0, frame 75 red 176
    body = {"messages": video_message("describe", video.data_uri), "max_tokens": 40}
    first, again = emulator.chat(**body).json(), emulator.chat(**body).json()
    text = first["choices"][0]["message"]["content"]
    assert text == again["choices"][0]["message"]["content"]
    found = re.search(r"1 video: (\d+) frames (\d+x\d+) jpeg-sequence first #(\w{6}) last #(\w{6});", text)
    assert found is not None, text
    assert found.group(1, 2) == ("6", "320x256")
    first_red, last_red = int(found.group(3)[:2], 16), int(found.group(4)[:2], 16)
    assert abs(first_red - 0) <= 6 and abs(last_red - 176) <= 6


@pytest.mark.parametrize(
    ("flags", "frames"),
    [
        pytest.param({"max_videos": 1}, 32, id="vllm-default-32-frames"),
        pytest.param(VLLM_FLAGS, 6, id="fps-2-all-frames"),
        pytest.param({"max_videos": 1, "video_num_frames": 10}, 10, id="num-frames-10"),
    ],
)
def test_containers_are_decoded_and_sampled(
    flags: dict[str, Any], frames: int, start_emulator: Callable[..., Emulator]
) -> None:
    emulator = start_emulator(answer_tokens=40, **flags)
    for data, mime, codec in (
        (clips.mp4(frames=90), "video/mp4", "h264"),
        (clips.webm(frames=90), "video/webm", "vp9"),
    ):
        response = emulator.chat(messages=video_message("describe", container_uri(data, mime)), max_tokens=40)
        assert response.status_code == 200, response.text
        assert (
            f"1 video: {frames} frames 320x240 {codec}" in response.json()["choices"][0]["message"]["content"]
        )


async def test_num_frames_keeps_the_first_frames_of_a_sequence(
    start_emulator: Callable[..., Emulator],
) -> None:
    emulator = start_emulator(answer_tokens=40, max_videos=1, video_fps=2.0, video_num_frames=4)
    video = await prepared(clips.mp4(frames=90))
    response = emulator.chat(messages=video_message("describe", video.data_uri), max_tokens=40)
    assert "1 video: 4 frames 320x256" in response.json()["choices"][0]["message"]["content"]


async def test_video_limit_uses_vllms_wording(start_emulator: Callable[..., Emulator]) -> None:
    uri = (await prepared(clips.mp4())).data_uri
    closed = start_emulator()  # like vLLM started with '{"image": 4, "video": 0}'
    refused = closed.chat(messages=video_message("x", uri))
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "At most 0 video(s) may be provided in one prompt."
    opened = start_emulator(**VLLM_FLAGS)
    assert opened.chat(messages=video_message("x", uri)).status_code == 200
    two = opened.chat(messages=video_message("x", uri, uri))
    assert two.status_code == 400
    assert two.json()["error"]["message"] == "At most 1 video(s) may be provided in one prompt."


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("data:video/jpeg;base64,!!!!", "Failed to load video frame"),  # lenient base64, as vLLM
        ("data:video/jpeg;base64," + base64.b64encode(b"not a jpeg").decode(), "Failed to load video frame"),
        (
            "data:video/jpeg;base64,"
            + ",".join(base64.b64encode(image_bytes(w, 48)).decode() for w in (64, 80)),
            "same shape",
        ),
        ("data:video/mp4;base64," + base64.b64encode(b"\x00" * 64).decode(), "Failed to load video"),
        ("data:video/mp4,abc", "Only base64 data URLs"),
        ("ftp://example.com/clip.mp4", "must be either a HTTP, data or file URL"),
    ],
)
def test_broken_videos_are_400(url: str, fragment: str, start_emulator: Callable[..., Emulator]) -> None:
    response = start_emulator(**VLLM_FLAGS).chat(messages=video_message("x", url))
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


def test_vllm_flags_configure_video() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--limit-mm-per-prompt",
            '{"image": 4, "video": 1}',
            "--media-io-kwargs",
            '{"video": {"fps": 2, "num_frames": -1}}',
        ]
    )
    config = config_from_args(args)
    assert (config.max_images, config.max_videos, config.video_fps, config.video_num_frames) == (
        4,
        1,
        2.0,
        -1,
    )
