"""Hostile and broken clips: each refused with its contract code and reason, before costly work.

Every clip is made here by FFmpeg's own encoders and muxers (tests/unit/video/clips.py), then
cut, corrupted or sized to break one rule.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from PIL import Image
from prometheus_client import REGISTRY

from gateway.errors import GatewayError, VideoTooLarge, VideoUndecodable
from gateway.video import VideoIntake
from tests.unit.video import clips


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48)).save(out, "PNG")
    return out.getvalue()


def cut(data: bytes, share: float) -> bytes:
    return data[: int(len(data) * share)]


def flip_after(data: bytes, share: float) -> bytes:
    start = int(len(data) * share)
    return data[:start] + bytes(byte ^ 0x5A for byte in data[start:])


UNDECODABLE = [
    pytest.param(lambda: cut(clips.mp4(frames=90), 0.5), "corrupt", id="mp4-cut-index-lost"),
    pytest.param(lambda: cut(clips.mp4(frames=90, faststart=True), 0.5), "corrupt", id="mp4-cut-mid-frame"),
    pytest.param(lambda: cut(clips.webm(frames=90), 0.5), "truncated", id="webm-cut-in-half"),
    pytest.param(lambda: cut(clips.webm(frames=90), 0.1), "truncated", id="webm-cut-to-a-tenth"),
    pytest.param(
        lambda: flip_after(clips.mp4(frames=90, faststart=True), 0.3), "corrupt", id="mp4-corrupt-data"
    ),
    pytest.param(lambda: clips.mp4()[:32] + bytes(range(256)) * 40, "corrupt", id="ftyp-then-junk"),
    pytest.param(lambda: b"\x00\x00\x00\x18ftypmp42" + bytes(16), "corrupt", id="ftyp-only"),
    pytest.param(
        lambda: clips.encode(container="matroska", codec="mjpeg", pix_fmt="yuvj420p"),
        "codec",
        id="mjpeg-in-mkv",
    ),
    pytest.param(
        lambda: clips.encode(container="matroska", codec="rawvideo", size=(64, 48)), "codec", id="raw-in-mkv"
    ),
    pytest.param(lambda: clips.encode(container="mp4", codec="mpeg4"), "codec", id="mpeg4-part2-in-mp4"),
    pytest.param(
        lambda: clips.encode(container="mov", codec="prores", pix_fmt="yuv422p10le", size=(64, 48)),
        "codec",
        id="prores-in-mov",
    ),
    pytest.param(lambda: clips.encode(container="avi", codec="mpeg4"), "format", id="avi"),
    pytest.param(
        lambda: clips.encode(container="gif", codec="gif", pix_fmt="rgb8", size=(64, 48)), "format", id="gif"
    ),
    pytest.param(png, "format", id="png-image"),
    pytest.param(lambda: b"this is a text file, not a clip\n" * 20, "format", id="text"),
    pytest.param(lambda: clips.mp4(videos=2), "streams", id="two-video-streams"),
]


@pytest.mark.parametrize(("clip", "reason"), UNDECODABLE)
async def test_undecodable_clips_are_40010(
    clip: Callable[[], bytes], reason: str, make_intake: Callable[..., VideoIntake]
) -> None:
    with pytest.raises(VideoUndecodable) as caught:
        await make_intake().prepare(b64(clip()))
    assert (caught.value.code, caught.value.status) == (40010, 400)
    assert caught.value.reason == reason


async def test_audio_only_file_has_no_video_stream(make_intake: Callable[..., VideoIntake]) -> None:
    out = io.BytesIO()
    with clips.av.open(out, "w", format="mp4") as muxer:
        stream = clips._audio_stream(muxer)
        clips._silence(muxer, stream, 1.0)
    with pytest.raises(VideoUndecodable) as caught:
        await make_intake().prepare(b64(out.getvalue()))
    assert caught.value.reason == "streams"


TOO_LARGE = [
    pytest.param(
        lambda: clips.mp4(times=[0, 3600, 7200], size=(64, 64)), {}, "duration", id="two-hours-three-frames"
    ),
    pytest.param(
        # WebM written as a live stream declares no duration: the length shows only while reading.
        lambda: clips.encode(
            container="webm", codec="libvpx", times=[0, 1, 2, 3600], size=(64, 64), options={"live": "1"}
        ),
        {},
        "duration",
        id="an-hour-undeclared",
    ),
    pytest.param(lambda: clips.mp4(size=(4000, 2200), frames=2), {}, "pixels", id="over-4k-pixels"),
    pytest.param(lambda: clips.mp4(size=(4352, 64), frames=2), {}, "pixels", id="side-over-4096"),
    pytest.param(
        lambda: clips.encode(size=(32, 32), frames=3000, fps=1000), {}, "fps", id="3000-tiny-frames-1000fps"
    ),
    pytest.param(
        lambda: clips.mp4(size=(32, 32), frames=150),
        {"video_max_source_frames": 100},
        "frames",
        id="frames-declared",
    ),
    pytest.param(
        # Matroska declares no frame count: the count is kept while decoding.
        lambda: clips.encode(container="webm", codec="libvpx", size=(32, 32), frames=150),
        {"video_max_source_frames": 100},
        "frames",
        id="frames-counted",
    ),
    pytest.param(lambda: clips.mp4(), {"video_max_decode_bytes": 1 << 20}, "memory", id="memory-estimate"),
    pytest.param(lambda: clips.mp4(), {"video_decode_timeout": 1e-9}, "work", id="wall-deadline"),
    pytest.param(lambda: clips.mp4(), {"video_decode_cpu_seconds": 1e-9}, "work", id="cpu-deadline"),
    pytest.param(lambda: clips.mp4(frames=60), {"video_max_bytes": 4096}, "bytes", id="bytes"),
]


@pytest.mark.parametrize(("clip", "settings", "reason"), TOO_LARGE)
async def test_oversized_clips_are_41302(
    clip: Callable[[], bytes],
    settings: dict[str, float],
    reason: str,
    make_intake: Callable[..., VideoIntake],
) -> None:
    with pytest.raises(VideoTooLarge) as caught:
        await make_intake(**settings).prepare(b64(clip()))
    assert (caught.value.code, caught.value.status) == (41302, 413)
    assert caught.value.reason == reason


async def test_many_small_frames_within_limits_are_fine(make_intake: Callable[..., VideoIntake]) -> None:
    """2,000 frames at 240 fps (a phone's slow motion) is allowed: 8.3 s, sampled to 18 frames."""
    data = clips.encode(container="webm", codec="libvpx", size=(32, 32), frames=2000, fps=240)
    video = await make_intake().prepare(b64(data))
    assert video.frames == 18


@pytest.mark.parametrize(
    ("ref", "code", "reason"),
    [
        ("data:video/mp4;base64,AAAA!!!!", 40010, "base64"),
        ("AAAAA", 40010, "base64"),
        ("data:video/mp4,AAAA", 40010, "base64"),
        ("data:image/png;base64,AAAA", 40010, "format"),
        ("data:video/mp4;base64,", 40010, "base64"),
        ("file:///etc/passwd", 40003, "scheme"),
        ("//127.0.0.1/x.mp4", 40003, "scheme"),
    ],
)
async def test_bad_strings(ref: str, code: int, reason: str, make_intake: Callable[..., VideoIntake]) -> None:
    with pytest.raises(GatewayError) as caught:
        await make_intake().prepare(ref)
    assert (caught.value.code, caught.value.reason) == (code, reason)


async def test_refusals_are_counted_by_reason(make_intake: Callable[..., VideoIntake]) -> None:
    def count(reason: str) -> float:
        return REGISTRY.get_sample_value("gateway_video_refusals_total", {"reason": reason}) or 0.0

    before = count("codec"), count("duration")
    intake = make_intake()
    with pytest.raises(VideoUndecodable):
        await intake.prepare(b64(clips.encode(container="matroska", codec="mjpeg", pix_fmt="yuvj420p")))
    with pytest.raises(VideoTooLarge):
        await intake.prepare(b64(clips.mp4(times=[0, 3600], size=(64, 64))))
    assert (count("codec"), count("duration")) == (before[0] + 1, before[1] + 1)


async def test_oversized_base64_refused_before_decoding(make_intake: Callable[..., VideoIntake]) -> None:
    with pytest.raises(VideoTooLarge) as caught:
        await make_intake(video_max_bytes=1024).prepare("A" * 2000)
    assert caught.value.reason == "bytes"
