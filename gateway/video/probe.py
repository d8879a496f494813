"""Open a clip from memory and judge its headers before any frame is decoded.

The demuxer is chosen from the magic bytes (ISO BMFF -> FFmpeg's ``mov``, EBML -> ``matroska``)
and forced, so FFmpeg never probes the bytes against its other demuxers (HLS and concat
playlists, image sequences ...). Nested opens (MP4 data references, playlists) are refused by an
``io_open`` that opens nothing: the clip is read from an ``io.BytesIO``, never from a path.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import av
from av.container import InputContainer
from av.video.stream import VideoStream

from gateway.video.limits import VideoLimits, too_large, undecodable

# What phones and browsers record (and vLLM-side decoders handle); documented in docs/video.md.
ALLOWED_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
_ISO_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"})
_EBML = b"\x1a\x45\xdf\xa3"
# Recognised only to say what was sent instead.
_OTHER = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF"),
    (b"RIFF", "a RIFF file (AVI, WAV or WebP)"),
    (b"\x00\x00\x01\xba", "an MPEG program stream"),
)
# Seconds a declared duration may exceed the limit by (containers round; a "30 s" clip is 30.03 s).
DURATION_SLACK = 0.5


@dataclass(frozen=True, slots=True)
class ClipProbe:
    """What the headers say about a clip's one video stream."""

    container: str  # "mp4" (mov, mp4, 3gp) or "matroska" (mkv, webm)
    codec: str
    width: int  # coded, before rotation
    height: int
    display_width: int  # the width shown: coded width x sample aspect ratio (anamorphic clips)
    duration: float | None  # seconds, when declared
    fps: float | None  # average frame rate, when declared
    frames: int | None  # frame count, when declared
    audio: bool


def sniff(data: bytes) -> str:
    """The FFmpeg demuxer for ``data`` ("mov" or "matroska"); 40010 for anything else."""
    if data[4:8] in _ISO_BOXES:
        return "mov"
    if data.startswith(_EBML):
        return "matroska"
    what = next((name for magic, name in _OTHER if data.startswith(magic)), "not a recognised clip")
    raise undecodable(f"video is {what}: only mp4, mov and webm clips are accepted", "format")


def _refuse_nested(url: str, flags: int, options: dict[str, Any]) -> Any:
    raise OSError(f"nested open of {url!r} refused")


def open_clip(data: bytes) -> InputContainer:
    """The container of ``data``, opened with a forced demuxer; 40010 when it does not parse."""
    demuxer = sniff(data)
    try:
        return av.open(
            io.BytesIO(data),
            mode="r",
            format=demuxer,
            io_open=_refuse_nested,
            metadata_errors="ignore",
        )
    except (av.FFmpegError, OSError, ValueError, UnicodeError) as exc:
        raise undecodable(f"video container could not be read ({_name(exc)})", "corrupt") from None


def video_stream(container: InputContainer, limits: VideoLimits) -> VideoStream:
    """The clip's one video stream (cover art aside); 40010 for none, several, or too many streams."""
    streams = list(container.streams)
    if len(streams) > limits.max_streams:
        raise undecodable(
            f"video has {len(streams)} streams; at most {limits.max_streams} allowed", "streams"
        )
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if len(videos) != 1:
        raise undecodable(f"video has {len(videos)} video streams; exactly one is needed", "streams")
    return videos[0]


def probe(container: InputContainer, stream: VideoStream, limits: VideoLimits) -> ClipProbe:
    """Judge the headers: codec (40010), side, pixels, duration, frame rate and count (41302)."""
    codec = stream.codec_context.codec.canonical_name
    if codec not in ALLOWED_CODECS:
        allowed = ", ".join(sorted(ALLOWED_CODECS))
        raise undecodable(f"video codec {codec!r} is not allowed; allowed: {allowed}", "codec")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise undecodable("video stream declares no frame size", "corrupt")
    check_frame_size(width, height, limits)
    duration = _duration(container, stream)
    if duration is not None and duration > limits.max_duration + DURATION_SLACK:
        raise too_large(
            f"video is {duration:.1f} s long; at most {limits.max_duration:g} s allowed", "duration"
        )
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    if fps is not None and fps > limits.max_source_fps:
        raise too_large(
            f"video is {fps:g} frames per second; at most {limits.max_source_fps:g} allowed", "fps"
        )
    frames = stream.frames or None
    if frames is not None and frames > limits.max_source_frames:
        raise too_large(f"video has {frames} frames; at most {limits.max_source_frames} allowed", "frames")
    return ClipProbe(
        container="mp4" if container.format.name.startswith("mov") else "matroska",
        codec=codec,
        width=width,
        height=height,
        display_width=_display_width(width, stream),
        duration=duration,
        fps=fps,
        frames=frames,
        audio=bool(container.streams.audio),
    )


def check_frame_size(width: int, height: int, limits: VideoLimits) -> None:
    """41302 when a frame is over the side or pixel limit (checked again on every decoded frame)."""
    if max(width, height) > limits.max_source_side or width * height > limits.max_source_pixels:
        raise too_large(
            f"video is {width}x{height}; at most {limits.max_source_side} pixels a side "
            f"and {limits.max_source_pixels} pixels a frame allowed",
            "pixels",
        )


def _display_width(width: int, stream: VideoStream) -> int:
    # Non-square pixels (HDV, DV, some screen recorders): frames are sent with square ones.
    aspect = stream.sample_aspect_ratio
    if not aspect or aspect <= 0 or not 0.25 <= aspect <= 4:
        return width
    return max(1, round(width * aspect))


def _duration(container: InputContainer, stream: VideoStream) -> float | None:
    # The video stream's own duration first: the container's is the longest stream (audio too).
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tagged = _clock(stream.metadata.get("DURATION", ""))  # Matroska writes one per track
    if tagged is not None:
        return tagged
    if container.duration:
        return container.duration / av.time_base
    return None


def _clock(text: str) -> float | None:
    """Seconds of a Matroska ``DURATION`` tag ("00:01:02.500000000"), or None."""
    hours, _, rest = text.partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _name(exc: BaseException) -> str:
    return type(exc).__name__
