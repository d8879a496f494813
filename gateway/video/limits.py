"""The limits one clip is held to, and refusals that say which limit and why.

Every video error carries ``reason`` (rendered as ``reason`` in the app envelope), one
of the short words below, as image errors do (gateway/images/limits.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import VideoTooLarge, VideoUndecodable
from gateway.settings import Settings

# Reasons, by contract code.
#   40010 undecodable: "base64", "format", "codec", "streams", "corrupt", "truncated"
#   41302 too large:   "bytes", "duration", "fps", "frames", "pixels", "memory", "work"
#   URL refusals and fetch failures keep the image codes 40003/40004 and their reasons.


def undecodable(message: str, reason: str) -> VideoUndecodable:
    """40010 with ``reason``."""
    return VideoUndecodable(message, reason=reason)


def too_large(message: str, reason: str) -> VideoTooLarge:
    """41302 with ``reason``."""
    return VideoTooLarge(message, reason=reason)


@dataclass(frozen=True, slots=True)
class VideoLimits:
    """What one clip may cost: the source it may be, and the frames it becomes."""

    max_bytes: int
    max_duration: float
    max_source_pixels: int
    max_source_side: int
    max_source_fps: float
    max_source_frames: int
    max_streams: int
    sample_fps: float
    max_frames: int
    frame_pixel_budget: int
    total_pixel_budget: int
    jpeg_quality: int
    decode_timeout: float
    decode_cpu_seconds: float
    decode_threads: int
    max_decode_bytes: int

    @classmethod
    def from_settings(cls, s: Settings) -> VideoLimits:
        """The limits of ``GATEWAY_VIDEO_*``."""
        return cls(
            max_bytes=s.video_max_bytes,
            max_duration=s.video_max_duration,
            max_source_pixels=s.video_max_source_pixels,
            max_source_side=s.video_max_source_side,
            max_source_fps=s.video_max_source_fps,
            max_source_frames=s.video_max_source_frames,
            max_streams=s.video_max_streams,
            sample_fps=s.video_sample_fps,
            max_frames=s.video_max_frames,
            frame_pixel_budget=s.video_frame_pixel_budget,
            total_pixel_budget=s.video_total_pixel_budget,
            jpeg_quality=s.video_jpeg_quality,
            decode_timeout=s.video_decode_timeout,
            decode_cpu_seconds=s.video_decode_cpu_seconds,
            decode_threads=s.video_decode_threads,
            max_decode_bytes=s.video_max_decode_bytes,
        )

    def check_bytes(self, size: int, what: str = "video") -> None:
        """41302 when an encoded clip is over the byte limit."""
        if size > self.max_bytes:
            raise too_large(f"{what} is {size} bytes; at most {self.max_bytes} bytes allowed", "bytes")
