"""Real clips through VideoIntake: containers, codecs, audio, rotation, variable frame rate, hashes."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import msgspec
import pytest
from PIL import Image

from gateway.settings import Settings
from gateway.video import PreparedVideo, VideoIntake
from gateway.video.decode import Abandoned
from gateway.video.source import Source
from tests.unit.images.httpd import Httpd, reply
from tests.unit.video import clips
from tests.unit.video.frames import colour_at, frames_of, near

RED, BLUE = (255, 0, 0), (0, 0, 255)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("clip", "codec", "container", "audio"),
    [
        pytest.param(lambda: clips.mp4(), "h264", "mp4", False, id="mp4-h264"),
        pytest.param(lambda: clips.mp4(audio=True), "h264", "mp4", True, id="mp4-h264-aac"),
        pytest.param(lambda: clips.webm(codec="libvpx"), "vp8", "matroska", False, id="webm-vp8"),
        pytest.param(lambda: clips.webm(audio=True), "vp9", "matroska", True, id="webm-vp9-opus"),
        pytest.param(lambda: clips.encode(container="mov", codec="libx264"), "h264", "mp4", False, id="mov"),
        pytest.param(lambda: clips.encode(codec="hevc"), "hevc", "mp4", False, id="mp4-hevc"),
        pytest.param(
            lambda: clips.encode(container="webm", codec="libsvtav1"), "av1", "matroska", False, id="webm-av1"
        ),
        pytest.param(
            lambda: clips.encode(container="matroska", codec="libx264"), "h264", "matroska", False, id="mkv"
        ),
    ],
)
async def test_allowed_clips_become_jpeg_frames(
    clip: Callable[[], bytes],
    codec: str,
    container: str,
    audio: bool,
    make_intake: Callable[..., VideoIntake],
) -> None:
    data = clip()  # 30 frames at 30 fps: one second
    video = await make_intake().prepare(b64(data))
    assert (video.codec, video.container, video.audio) == (codec, container, audio)
    assert video.frames == 2  # 1 s at 2 fps
    assert video.duration == pytest.approx(1.0, abs=0.05)
    assert (video.source_width, video.source_height) == (320, 240)
    assert (video.width, video.height) == (320, 256)  # smart_resize: 240/32 = 7.5 rounds to 8
    images = frames_of(video)
    assert [image.size for image in images] == [(320, 256)] * 2
    # Frame 0 at 0 s, frame 15 at 0.5 s (the ramp's red channel is 16 x index, mod 256).
    assert near(colour_at(images[0], 0.5, 0.5), (0, 96, 160))
    assert near(colour_at(images[1], 0.5, 0.5), ((15 * 16) % 256, 96, 160))
    assert video.visual_tokens == 2 // 2 * (10 * 8 + 2 + 6)


async def test_non_square_pixels_are_sent_square(make_intake: Callable[..., VideoIntake]) -> None:
    # 240x240 coded, pixels 4:3 wide (as HDV stores 1440x1080 for 1920x1080): shown 320x240.
    data = clips.mp4(size=(240, 240), sample_aspect=Fraction(4, 3), paint=clips.halves)
    video = await make_intake().prepare(b64(data))
    assert (video.source_width, video.source_height) == (320, 240)
    assert (video.width, video.height) == (320, 256)
    image = frames_of(video)[0]
    assert near(colour_at(image, 0.3, 0.5), RED, 40) and near(colour_at(image, 0.7, 0.5), BLUE, 40)


async def test_json_uri_is_the_data_uri_as_json(make_intake: Callable[..., VideoIntake]) -> None:
    video = await make_intake().prepare(b64(clips.mp4()))
    body = msgspec.json.encode({"messages": [{"content": [{"video_url": {"url": video.json_uri()}}]}]})
    assert msgspec.json.decode(body)["messages"][0]["content"][0]["video_url"]["url"] == video.data_uri
    assert video.content_part() == {"type": "video_url", "video_url": {"url": video.data_uri}}


async def test_frames_carry_no_metadata(make_intake: Callable[..., VideoIntake]) -> None:
    video = await make_intake().prepare(b64(clips.mp4(rotation=90)))
    for image in frames_of(video):
        assert "exif" not in image.info
        assert image.getexif() == {}


async def test_one_clip_one_hash_over_every_transport(
    httpd: Httpd, make_intake: Callable[..., VideoIntake]
) -> None:
    data = clips.mp4(frames=60)
    httpd.routes["/clip.mp4"] = reply(body=data, content_type="video/mp4")
    intake = make_intake(image_allow_private_urls=True, image_allowed_ports=[httpd.port])
    videos = [
        await intake.prepare(f"{httpd.origin}/clip.mp4"),
        await intake.prepare(f"data:video/mp4;base64,{b64(data)}"),
        await intake.prepare(b64(data)),
    ]
    assert [video.source for video in videos] == ["url", "data_uri", "base64"]
    assert len({video.sha256 for video in videos}) == 1
    assert len({video.data_uri for video in videos}) == 1
    assert httpd.requests[0][1]["accept"] == "video/*"
    other = await intake.prepare(b64(clips.mp4(frames=60, paint=clips.halves)))
    assert other.sha256 != videos[0].sha256


@pytest.mark.parametrize(
    ("rotation", "top", "bottom"),
    [
        pytest.param(90, BLUE, RED, id="90-ccw"),  # the left (red) half turns to the bottom
        pytest.param(-90, RED, BLUE, id="90-cw"),  # a phone held upright: the usual case
    ],
)
async def test_rotated_clip_comes_out_upright(
    rotation: int,
    top: tuple[int, int, int],
    bottom: tuple[int, int, int],
    make_intake: Callable[..., VideoIntake],
) -> None:
    """The display matrix says how far to turn the coded frame counter-clockwise (ffmpeg's
    ``-display_rotation``); players and ffmpeg's autorotate show it turned, and so must we."""
    data = clips.mp4(size=(320, 240), rotation=rotation, paint=clips.halves)
    video = await make_intake().prepare(b64(data))
    assert (video.source_width, video.source_height) == (240, 320)
    assert (video.width, video.height) == (256, 320)
    assert video.rotation == rotation % 360
    for image in frames_of(video):
        assert image.size == (256, 320)
        assert near(colour_at(image, 0.5, 0.1), top, 40)
        assert near(colour_at(image, 0.5, 0.9), bottom, 40)


async def test_upside_down_clip(make_intake: Callable[..., VideoIntake]) -> None:
    video = await make_intake().prepare(b64(clips.mp4(rotation=180, paint=clips.halves)))
    [image, _] = frames_of(video)
    assert image.size == (320, 256)
    assert near(colour_at(image, 0.1, 0.5), BLUE, 40)
    assert near(colour_at(image, 0.9, 0.5), RED, 40)


@pytest.mark.parametrize("container", ["mp4", "matroska"])
async def test_variable_frame_rate_is_sampled_by_time(
    container: str, make_intake: Callable[..., VideoIntake]
) -> None:
    # Frame i is red 16*i; frames arrive at irregular times, as from a phone under load.
    times = [0.0, 0.2, 0.25, 1.5, 1.55, 2.9]
    data = clips.encode(container=container, codec="libx264", times=times)
    video = await make_intake().prepare(b64(data))
    assert video.frames == 6  # 2.9 s and the last frame's display time, at 2 fps
    reds = [colour_at(image, 0.5, 0.5)[0] for image in frames_of(video)]
    # Targets 0, 0.5, 1.0, 1.5, 2.0, 2.5 s show the last frame at or before them: 0, 2, 2, 3, 4, 4.
    expected = [0, 32, 32, 48, 64, 64]
    assert all(abs(red - want) <= 6 for red, want in zip(reds, expected, strict=True)), reds


async def test_long_clip_is_sampled_at_two_fps(make_intake: Callable[..., VideoIntake]) -> None:
    video = await make_intake().prepare(b64(clips.mp4(frames=300, fps=30, size=(64, 64))))
    assert video.frames == 20
    assert video.fps_sampled == 2.0
    reds = [colour_at(image, 0.5, 0.5)[0] for image in frames_of(video)]
    assert all(abs(red - (i * 15 * 16) % 256) <= 6 for i, red in enumerate(reds)), reds


@pytest.mark.parametrize(("frames", "sent"), [(93, 6), (106, 8), (45, 4), (31, 2), (1, 2)])
async def test_clip_lengths_between_targets(
    frames: int, sent: int, make_intake: Callable[..., VideoIntake]
) -> None:
    """3.1 s, 3.53 s, 1.5 s, 1.03 s and one frame: whole clips, never taken for truncated ones."""
    video = await make_intake().prepare(b64(clips.mp4(frames=frames, fps=30, size=(64, 64))))
    assert video.frames == sent


async def test_odd_frame_count_is_padded_with_the_last_frame(make_intake: Callable[..., VideoIntake]) -> None:
    video = await make_intake().prepare(b64(clips.mp4(frames=36, fps=30, size=(64, 64))))  # 1.2 s
    assert video.frames == 4  # targets 0, 0.5, 1.0 s, and a fourth for the pair
    reds = [colour_at(image, 0.5, 0.5)[0] for image in frames_of(video)]
    expected = [0, (15 * 16) % 256, (30 * 16) % 256, (35 * 16) % 256]  # the fourth: the last frame
    assert all(abs(red - want) <= 6 for red, want in zip(reds, expected, strict=True)), reds


async def test_frames_shrink_to_fit_the_total_budget(make_intake: Callable[..., VideoIntake]) -> None:
    data = clips.mp4(frames=8, fps=2, size=(1280, 720))  # 4 s: 8 frames
    small = await make_intake(video_total_pixel_budget=8 * 100_000).prepare(b64(data))
    large = await make_intake().prepare(b64(data))
    assert small.frames == large.frames == 8
    assert small.width * small.height <= 100_000
    assert (large.width, large.height) == (832, 480)  # the 409,600-pixel frame budget
    assert small.visual_tokens < large.visual_tokens


async def test_decode_runs_in_the_pool(make_intake: Callable[..., VideoIntake]) -> None:
    names: list[str] = []

    class Pool(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            names.append(getattr(fn, "__name__", ""))
            return super().submit(fn, *args, **kwargs)

    with Pool(max_workers=1) as pool:
        await make_intake(executor=pool).prepare(b64(clips.mp4()))
    assert names == ["process"]


class Watched(VideoIntake):
    """Records when its pool job starts and how it ends."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.started = threading.Event()
        self.outcomes: list[str] = []

    def process(
        self, clip: bytes | str, source: Source, cancelled: threading.Event | None = None
    ) -> PreparedVideo:
        self.started.set()
        try:
            video = super().process(clip, source, cancelled)
        except BaseException as exc:
            self.outcomes.append(type(exc).__name__)
            raise
        self.outcomes.append("done")
        return video


async def test_a_client_that_leaves_stops_the_decode() -> None:
    intake = Watched(Settings())
    task = asyncio.create_task(intake.prepare(b64(clips.mp4(frames=900, size=(640, 360)))))  # 30 s
    while not intake.started.is_set():
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.get_running_loop().run_in_executor(intake._executor, lambda: None)  # after the job
    assert intake.outcomes == ["Abandoned"]
    await intake.aclose()


def test_cancelled_decode_stops(make_intake: Callable[..., VideoIntake]) -> None:
    cancelled = threading.Event()
    cancelled.set()
    intake = VideoIntake.__new__(VideoIntake)
    intake.limits = make_intake().limits
    with pytest.raises(Abandoned):
        intake.process(clips.mp4(), "base64", cancelled)


def test_clip_factory_makes_distinct_frames() -> None:
    assert clips.ramp(1, 4, 4).getpixel((0, 0)) != clips.ramp(2, 4, 4).getpixel((0, 0))
    assert isinstance(clips.halves(0, 4, 4), Image.Image)
