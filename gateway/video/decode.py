"""Bounded decoding: memory admitted from the frame size, a wall and CPU deadline, upright frames.

Runs in a worker thread (``VideoIntake``), never on the event loop. Every frame is decoded (the
codecs are inter-frame), but only the frames picked by timestamp are scaled and JPEG-encoded.
The deadline is checked between packets and frames; one frame's work is bounded by the pixel
limit. A frame shown at target time ``t`` is the last frame whose timestamp is at or before
``t``, so variable frame rate clips are sampled by time, not by index.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from gateway.video.geometry import FramePlan, frame_count
from gateway.video.limits import VideoLimits, too_large, undecodable
from gateway.video.probe import DURATION_SLACK, ClipProbe, check_frame_size

# H.264/HEVC keep up to 16 reference frames, plus the frame being decoded and the one handed out.
DECODER_FRAMES = 18
BYTES_PER_SOURCE_PIXEL = 1.5  # 8-bit 4:2:0; a 10-bit clip's 3 is covered by the reference slack
# A clip whose frames end this much before its declared duration was cut short.
TRUNCATION_SECONDS = 0.5
TRUNCATION_SHARE = 0.1
_UPRIGHT = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


class Abandoned(Exception):
    """The caller went away; the decode stopped between frames."""


class Budget:
    """The wall-clock and CPU deadline of one clip's probe and decode, and the caller's cancel flag."""

    def __init__(self, limits: VideoLimits, cancelled: threading.Event) -> None:
        self.limits = limits
        self.cancelled = cancelled
        self.wall_end = time.monotonic() + limits.decode_timeout
        self.cpu_end = time.thread_time() + limits.decode_cpu_seconds

    def check(self) -> None:
        """Raise Abandoned if cancelled, 41302 once either deadline has passed."""
        if self.cancelled.is_set():
            raise Abandoned
        if time.monotonic() > self.wall_end or time.thread_time() > self.cpu_end:
            raise too_large(
                f"video needs more than {self.limits.decode_timeout:g} s "
                f"({self.limits.decode_cpu_seconds:g} s of CPU) to decode; send a shorter or smaller clip",
                "work",
            )


def admit_memory(probe: ClipProbe, plan: FramePlan, limits: VideoLimits) -> int:
    """The estimated peak bytes of decoding ``probe`` under ``plan``; 41302 over the limit."""
    source = int(probe.width * probe.height * BYTES_PER_SOURCE_PIXEL)
    estimate = source * (DECODER_FRAMES + limits.decode_threads) + plan.frames * plan.width * plan.height * 3
    if estimate > limits.max_decode_bytes:
        raise too_large(
            f"decoding this {probe.width}x{probe.height} video would need about {estimate >> 20} MiB; "
            f"at most {limits.max_decode_bytes >> 20} MiB allowed",
            "memory",
        )
    return estimate


@dataclass(frozen=True, slots=True)
class Sampled:
    """The JPEG frames picked from a clip, upright, and what decoding saw."""

    jpegs: list[bytes]
    width: int  # upright
    height: int
    rotation: int  # degrees counter-clockwise applied to make the frames upright
    decoded_frames: int
    span: float  # seconds from the first to the last decoded frame


class Sampler:
    """Decodes one video stream and keeps the frames shown at the plan's target times."""

    def __init__(self, probe: ClipProbe, plan: FramePlan, limits: VideoLimits, budget: Budget) -> None:
        self.probe = probe
        self.plan = plan
        self.limits = limits
        self.budget = budget
        self.targets = plan.targets(limits.sample_fps)
        self.jpegs: list[bytes] = []
        self.rotation: int | None = None
        self.decoded = 0
        self.first: float | None = None
        self.last = -1.0
        self.shown: VideoFrame | None = None  # the frame on screen at the last timestamp seen
        self.shown_jpeg: bytes | None = None

    def run(self, container: InputContainer, stream: VideoStream) -> Sampled:
        """Decode until every target has its frame, then skim the rest of the packets for length."""
        for other in container.streams:
            if other is not stream:
                other.discard = av.stream.Discard.all
        context = stream.codec_context
        context.thread_count = self.limits.decode_threads
        context.thread_type = "AUTO" if self.limits.decode_threads > 1 else "NONE"
        packets = container.demux(stream)
        try:
            for packet in packets:
                self.budget.check()
                for frame in packet.decode():
                    self._frame(frame)
                if len(self.jpegs) == len(self.targets):
                    break
            self._skim(packets)
        except av.FFmpegError as exc:
            raise undecodable(
                f"video stream could not be decoded ({type(exc).__name__})", "corrupt"
            ) from None
        return self._finish()

    def _frame(self, frame: VideoFrame) -> None:
        self.budget.check()
        self.decoded += 1
        if self.decoded > self.limits.max_source_frames:
            raise too_large(f"video has over {self.limits.max_source_frames} frames", "frames")
        check_frame_size(frame.width, frame.height, self.limits)
        seconds = frame.time if frame.time is not None else self.decoded / (self.probe.fps or 30.0)
        if self.first is None:
            self.first = seconds
            self.rotation = round((frame.rotation % 360) / 90) % 4 * 90
        at = seconds - self.first
        if at <= self.last:
            return  # a repeated or out-of-order timestamp: keep the frame already on screen
        self._check_length(at)
        while (
            self.shown is not None
            and len(self.jpegs) < len(self.targets)
            and self.targets[len(self.jpegs)] < at
        ):
            self.jpegs.append(self._shown_jpeg())
        self.shown, self.shown_jpeg, self.last = frame, None, at

    def _skim(self, packets: Iterator[av.Packet[VideoStream]]) -> None:
        # Targets are full: the rest is only demuxed (cheap, no decoding) to refuse an overlong clip.
        for packet in packets:
            self.budget.check()
            if packet.pts is not None and packet.time_base is not None and self.first is not None:
                self._check_length(float(packet.pts * packet.time_base) - self.first)

    def _check_length(self, at: float) -> None:
        if at > self.limits.max_duration + DURATION_SLACK:
            raise too_large(f"video is over {self.limits.max_duration:g} s long", "duration")

    def _shown_jpeg(self) -> bytes:
        if self.shown_jpeg is None:
            assert self.shown is not None
            self.shown_jpeg = self._encode(self.shown)
        return self.shown_jpeg

    def _encode(self, frame: VideoFrame) -> bytes:
        self.budget.check()
        image = frame.reformat(
            width=self.plan.width, height=self.plan.height, format="rgb24", interpolation="AREA"
        ).to_image()  # type: ignore[no-untyped-call]  # PyAV's stub leaves it untyped
        if self.rotation:
            image = image.transpose(_UPRIGHT[self.rotation])
        out = io.BytesIO()
        image.save(out, "JPEG", quality=self.limits.jpeg_quality)  # a fresh JPEG: no metadata
        return out.getvalue()

    def _finish(self) -> Sampled:
        if self.shown is None:
            raise undecodable("video has no decodable frames", "corrupt")
        declared = self.probe.duration
        covered = self.last + (1 / self.probe.fps if self.probe.fps else 0.0)
        if declared is None:  # planned for the longest clip: keep what the frames cover
            wanted = frame_count(covered, self.limits)
        else:
            wanted = len(self.targets)
            ran_out = len(self.jpegs) < wanted  # the frames ended before the last target
            if ran_out and declared - covered > max(TRUNCATION_SECONDS, TRUNCATION_SHARE * declared):
                raise undecodable(
                    f"video is cut short: frames end at {covered:.1f} s of a declared {declared:.1f} s",
                    "truncated",
                )
        del self.jpegs[wanted:]
        while len(self.jpegs) < wanted:
            self.jpegs.append(self._shown_jpeg())  # the last frame stays on screen
        rotation = self.rotation or 0
        width, height = self.plan.width, self.plan.height
        if rotation in (90, 270):
            width, height = height, width
        return Sampled(self.jpegs, width, height, rotation, self.decoded, self.last)
