"""Real clips for the video tests, encoded here with PyAV (FFmpeg's libx264, libvpx, x265 ...).

Every clip is made by a real encoder and muxer, so probing and decoding meet what FFmpeg writes;
frames are solid colours, or two halves, so a test can tell which frame it got and which way up.
Source of every input: this module (no clip is downloaded).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer
from PIL import Image

Painter = Callable[[int, int, int], Image.Image]  # (index, width, height) -> frame

# Fast settings: the tests need real streams, not good ones.
ENCODER_OPTIONS = {
    "libx264": {"preset": "ultrafast"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
    "hevc": {"preset": "ultrafast", "x265-params": "log-level=none"},
    "libsvtav1": {"preset": "12"},
}


def ramp(index: int, width: int, height: int) -> Image.Image:
    """Frame ``index`` as one solid colour that changes with the index (red = 16 x index mod 256)."""
    return Image.new("RGB", (width, height), ((index * 16) % 256, 96, 160))


def halves(index: int, width: int, height: int) -> Image.Image:
    """Left half red, right half blue: shows which way a frame was turned."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    return image


@dataclass
class Clip:
    """What to encode: ``frames`` frames at ``fps``, or frames at explicit ``times`` (variable rate)."""

    container: str = "mp4"
    codec: str = "libx264"
    size: tuple[int, int] = (320, 240)
    frames: int = 30
    fps: int = 30
    times: Sequence[float] | None = None
    audio: bool = False
    rotation: int | None = None
    pix_fmt: str = "yuv420p"
    paint: Painter = ramp
    videos: int = 1  # video streams
    sample_aspect: Fraction | None = None  # non-square pixels
    options: dict[str, str] = field(default_factory=dict)  # muxer options

    def write(self, target: str | io.BytesIO) -> None:
        with av.open(target, "w", format=self.container, options=self.options) as muxer:
            streams = [self._video_stream(muxer) for _ in range(self.videos)]
            sound = _audio_stream(muxer) if self.audio else None
            time_base = Fraction(1, 1000) if self.times is not None else Fraction(1, self.fps)
            count = len(self.times) if self.times is not None else self.frames
            for index in range(count):
                frame = av.VideoFrame.from_image(self.paint(index, *self.size))
                frame.pts = round(self.times[index] * 1000) if self.times is not None else index
                frame.time_base = time_base
                for stream in streams:
                    stream.codec_context.time_base = time_base
                    muxer.mux(stream.encode(frame))
            for stream in streams:
                muxer.mux(stream.encode(None))
            if sound is not None:
                _silence(muxer, sound, count / self.fps if self.times is None else self.times[-1])

    def _video_stream(self, muxer: OutputContainer) -> av.video.stream.VideoStream:
        stream = muxer.add_stream(self.codec, rate=self.fps)
        stream.width, stream.height = self.size
        stream.pix_fmt = self.pix_fmt
        stream.options = ENCODER_OPTIONS.get(self.codec, {})
        if self.times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if self.rotation is not None:
            stream.set_display_rotation(self.rotation)
        if self.sample_aspect is not None:
            stream.codec_context.sample_aspect_ratio = self.sample_aspect
        return stream


def encode(*, faststart: bool = False, **kwargs: object) -> bytes:
    """One clip (``Clip`` fields as keywords); ``faststart`` puts an MP4's index before its data."""
    clip = Clip(**kwargs)  # type: ignore[arg-type]
    if faststart:  # FFmpeg's second pass rewrites the file, so it needs a real one
        clip.options = {"movflags": "+faststart"}
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"clip.{clip.container}"
            clip.write(str(path))
            return path.read_bytes()
    out = io.BytesIO()
    clip.write(out)
    return out.getvalue()


def _audio_stream(muxer: OutputContainer) -> AudioStream:
    codec = "libopus" if muxer.format.name == "webm" else "aac"
    return muxer.add_stream(codec, rate=48000, layout="stereo")


def _silence(muxer: OutputContainer, stream: AudioStream, seconds: float) -> None:
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
    return encode(container="mp4", codec="libx264", **kwargs)


def webm(codec: str = "libvpx-vp9", **kwargs: object) -> bytes:
    """VP9 (or VP8) in WebM."""
    return encode(container="webm", codec=codec, **kwargs)
