"""Real clips for the video tests, encoded here with PyAV (FFmpeg's libx264, libvpx, ...).

Every clip is made by a real encoder and muxer, so probing and decoding meet what FFmpeg writes;
frames are solid colours, or two halves, so a test can tell which frame it got and which way up.
Source of every input: this module (no clip is downloaded).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from fractions import Fraction

import av
from PIL import Image

Colour = tuple[int, int, int]
Painter = Callable[[int, int, int], Image.Image]  # (index, width, height) -> frame

# Fast settings: the tests need real streams, not good ones.
ENCODER_OPTIONS = {
    "libx264": {"preset": "ultrafast"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
    "hevc": {"preset": "ultrafast", "x265-params": "log-level=none"},
}


def ramp(index: int, width: int, height: int) -> Image.Image:
    """Frame ``index`` as one solid colour that changes with the index (red ramps up)."""
    return Image.new("RGB", (width, height), ((index * 16) % 256, 96, 160))


def halves(index: int, width: int, height: int) -> Image.Image:
    """Left half red, right half blue: shows which way a frame was turned."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    return image


def encode(
    *,
    container: str = "mp4",
    codec: str = "libx264",
    size: tuple[int, int] = (320, 240),
    frames: int = 30,
    fps: int = 30,
    times: Sequence[float] | None = None,
    audio: bool = False,
    rotation: int | None = None,
    pix_fmt: str = "yuv420p",
    paint: Painter = ramp,
    faststart: bool = False,
) -> bytes:
    """One clip: ``frames`` frames at ``fps``, or at explicit ``times`` (seconds: variable frame rate)."""
    width, height = size
    out = io.BytesIO()
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(out, "w", format=container, options=options) as muxer:
        stream = muxer.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = ENCODER_OPTIONS.get(codec, {})
        if rotation is not None:
            stream.set_display_rotation(rotation)
        sound = _audio_stream(muxer) if audio else None
        time_base = Fraction(1, 1000) if times is not None else Fraction(1, fps)
        stream.codec_context.time_base = time_base
        count = len(times) if times is not None else frames
        for index in range(count):
            frame = av.VideoFrame.from_image(paint(index, width, height))
            frame.pts = round(times[index] * 1000) if times is not None else index
            frame.time_base = time_base
            muxer.mux(stream.encode(frame))
        muxer.mux(stream.encode(None))
        if sound is not None:
            _silence(muxer, sound, seconds=count / fps if times is None else times[-1])
    return out.getvalue()


def _audio_stream(muxer: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    codec = "libopus" if muxer.format.name == "webm" else "aac"
    return muxer.add_stream(codec, rate=48000, layout="stereo")


def _silence(muxer: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    samples = stream.codec_context.frame_size or 960
    sample_format = stream.codec_context.format.name
    for index in range(max(1, int(seconds * 48000 / samples))):
        frame = av.AudioFrame(format=sample_format, layout="stereo", samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 48000, index * samples
        muxer.mux(stream.encode(frame))
    muxer.mux(stream.encode(None))


def mp4(**kwargs: object) -> bytes:
    """H.264 in MP4."""
    return encode(container="mp4", codec="libx264", **kwargs)  # type: ignore[arg-type]


def webm(codec: str = "libvpx-vp9", **kwargs: object) -> bytes:
    """VP9 (or VP8) in WebM."""
    return encode(container="webm", codec=codec, **kwargs)  # type: ignore[arg-type]
