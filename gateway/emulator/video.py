"""Video parts as vLLM 0.33 takes them: JPEG frame sequences and containers, in frames and tokens.

``data:video/jpeg;base64,<f1>,<f2>,...`` is a frame sequence: each frame is decoded as an image;
with ``num_frames`` > 0 only the first ``num_frames`` are kept, and their timestamps come from
the server's ``--media-io-kwargs`` fps (1 when unset), as vLLM's ``VideoMediaIO.load_base64``
does. Any other ``data:video/...`` (or a fetched URL) is a container, decoded here with PyAV
(vLLM: OpenCV) and sampled uniformly: ``num_frames`` frames (default 32), or ``fps`` frames a
second when ``num_frames`` is -1. Tokens follow Qwen3-VL's video processor (3-D ``smart_resize``
over all frames, pairs of frames, a ``<t seconds>`` text per pair; gateway/video/geometry.py).
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import io
import math
from dataclasses import dataclass

import av
import httpx
import pybase64
from PIL import Image, ImageStat

from gateway.constants import QWEN_MAX_ASPECT_RATIO, QWEN_PATCH_FACTOR
from gateway.emulator.errors import bad_request
from gateway.emulator.images import fetch
from gateway.video.geometry import PAIR_FRAMING_TOKENS, TEMPORAL_PATCH, timestamp_tokens

# Qwen3-VL-8B-Instruct's video_preprocessor_config.json: size {shortest_edge, longest_edge}, pixels
# over all frames together.
VIDEO_MIN_PIXELS = 4096
VIDEO_MAX_PIXELS = 25_165_824
JPEG_SEQUENCE = "data:video/jpeg;base64,"


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the emulator knows of one video part after vLLM-style loading."""

    sha256: str
    kind: str  # "jpeg-sequence", or the container's codec
    frames: int
    width: int
    height: int
    first_rgb: str  # "#rrggbb" mean colour of the first and last kept frames
    last_rgb: str
    tokens: int


@dataclass(frozen=True, slots=True)
class VideoIO:
    """vLLM's ``--media-io-kwargs '{"video": {...}}'``."""

    num_frames: int = 32
    fps: float | None = None


def smart_resize_video(frames: int, height: int, width: int) -> tuple[int, int]:
    """Qwen3-VL's video ``smart_resize``: the pixel bounds hold for all frames together."""
    if max(height, width) / min(height, width) > QWEN_MAX_ASPECT_RATIO:
        raise bad_request(f"absolute aspect ratio must be smaller than {QWEN_MAX_ASPECT_RATIO}", "messages")
    factor = QWEN_PATCH_FACTOR
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    t_bar = math.ceil(frames / TEMPORAL_PATCH) * TEMPORAL_PATCH
    if t_bar * h_bar * w_bar > VIDEO_MAX_PIXELS:
        beta = math.sqrt(frames * height * width / VIDEO_MAX_PIXELS)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < VIDEO_MIN_PIXELS:
        beta = math.sqrt(VIDEO_MIN_PIXELS / (frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def video_tokens(indices: list[int], fps: float, height: int, width: int) -> int:
    """Prompt tokens of frames at ``indices`` of a ``fps`` clip, as Qwen3-VL's processor writes them."""
    h_bar, w_bar = smart_resize_video(len(indices), height, width)
    grid = (h_bar // QWEN_PATCH_FACTOR) * (w_bar // QWEN_PATCH_FACTOR)
    padded = indices + indices[-1:] * (len(indices) % TEMPORAL_PATCH)
    total = 0
    for pair in range(0, len(padded), TEMPORAL_PATCH):
        seconds = (padded[pair] / fps + padded[pair + TEMPORAL_PATCH - 1] / fps) / 2
        total += grid + PAIR_FRAMING_TOKENS + timestamp_tokens(seconds)
    return total


def _mean(image: Image.Image) -> str:
    small = image.convert("RGB")
    small.thumbnail((64, 64))
    return "#" + "".join(f"{round(channel):02x}" for channel in ImageStat.Stat(small).mean[:3])


def _b64(text: str) -> bytes:
    try:
        return pybase64.b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"Failed to decode base64 video data: {exc}", "messages") from None


def jpeg_sequence(payload: str, sha: str, io_kwargs: VideoIO) -> VideoInfo:
    """A ``data:video/jpeg`` payload: each comma-separated part one JPEG frame."""
    parts = (
        payload.split(",", io_kwargs.num_frames)[: io_kwargs.num_frames]
        if io_kwargs.num_frames > 0
        else payload.split(",")
    )
    images = []
    for part in parts:
        try:
            with Image.open(io.BytesIO(_b64(part))) as image:
                image.load()
                images.append(image.convert("RGB"))
        except OSError as exc:
            raise bad_request(f"Failed to load video frame: {exc}", "messages") from None
    if len({image.size for image in images}) != 1:
        raise bad_request("all input arrays must have the same shape", "messages")  # numpy.stack's words
    width, height = images[0].size
    tokens = video_tokens(list(range(len(images))), io_kwargs.fps or 1.0, height, width)
    return VideoInfo(
        sha, "jpeg-sequence", len(images), width, height, _mean(images[0]), _mean(images[-1]), tokens
    )


def _sample(total: int, rate: float, io_kwargs: VideoIO) -> list[int]:
    """Frame indices kept from a ``total``-frame clip (np.linspace(0, total - 1, count, dtype=int))."""
    if io_kwargs.num_frames > 0:
        count = min(io_kwargs.num_frames, total)
    elif io_kwargs.fps:
        count = min(total, max(1, math.floor(total / rate * io_kwargs.fps)))
    else:
        count = total
    return [int(i * (total - 1) / (count - 1)) if count > 1 else 0 for i in range(count)]


def container(data: bytes, sha: str, io_kwargs: VideoIO) -> VideoInfo:
    """A video file, sampled uniformly (OpenCV-backend style); only the kept frames are converted."""
    try:
        with av.open(io.BytesIO(data), mode="r") as clip:
            stream = clip.streams.video[0]
            total = sum(1 for packet in clip.demux(stream) if packet.size)  # counted without decoding
            rate = float(stream.average_rate or stream.guessed_rate or 30)
            codec = stream.codec_context.codec.canonical_name
            indices = _sample(total, rate, io_kwargs) if total else []
            wanted, kept = set(indices), {}
            clip.seek(0)
            for index, frame in enumerate(clip.decode(stream)):
                if index in wanted:
                    kept[index] = frame.to_image()  # type: ignore[no-untyped-call]
    except (av.FFmpegError, IndexError, OSError, ValueError) as exc:
        raise bad_request(f"Failed to load video: {exc}", "messages") from None
    indices = [index for index in indices if index in kept]  # a frame that did not decode is skipped
    if not indices:
        raise bad_request("Failed to load video: no frames", "messages")
    first, last = kept[indices[0]], kept[indices[-1]]
    tokens = video_tokens(indices, rate, first.height, first.width)
    return VideoInfo(sha, codec, len(indices), first.width, first.height, _mean(first), _mean(last), tokens)


async def load_video(url: str | None, client: httpx.AsyncClient, io_kwargs: VideoIO) -> VideoInfo:
    """One ``video_url`` part, loaded (off the event loop) as vLLM would."""
    if url is None:
        raise bad_request("video_url.url: Field required", "messages")
    sha = hashlib.sha256(url.encode()).hexdigest()
    if url[: len(JPEG_SEQUENCE)].lower() == JPEG_SEQUENCE:
        return await asyncio.to_thread(jpeg_sequence, url[len(JPEG_SEQUENCE) :], sha, io_kwargs)
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise bad_request("Only base64 data URLs are supported for videos.", "messages")
        data = _b64(payload)
    elif url.startswith(("http://", "https://")):
        data = await fetch(client, url)
    else:
        raise bad_request("The URL must be either a HTTP, data or file URL.", "messages")
    return await asyncio.to_thread(container, data, hashlib.sha256(data).hexdigest(), io_kwargs)


def describe_videos(videos: list[VideoInfo]) -> list[str]:
    """Answer words for the videos: frame count, frame size, mean colour of the first and last frame."""
    if not videos:
        return []
    words = [str(len(videos)), "video:" if len(videos) == 1 else "videos:"]
    for video in videos:
        words += [f"{video.frames}", "frames", f"{video.width}x{video.height}", video.kind]
        words += ["first", video.first_rgb, "last", f"{video.last_rgb};"]
    return words
