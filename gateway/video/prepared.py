"""PreparedVideo: a clip turned into what vLLM receives, with its cost and content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec
import pybase64

from gateway.video.decode import Sampled
from gateway.video.geometry import video_prompt_tokens
from gateway.video.probe import ClipProbe
from gateway.video.source import Source

DATA_URI_PREFIX = "data:video/jpeg;base64,"


@dataclass(frozen=True, slots=True)
class PreparedVideo:
    """One clip after intake: sampled JPEG frames as vLLM 0.33's JPEG-sequence data URI."""

    data_uri: str  # data:video/jpeg;base64,<frame>,<frame>,... (JSON-safe as it is)
    frames: int  # even
    width: int  # of every frame, upright, multiples of 32
    height: int
    sha256: str  # over the sampled frames: one clip sent as URL or base64 hashes the same
    visual_tokens: int  # prompt tokens the clip costs upstream (frames, framing, timestamps)
    duration: float  # seconds of the source clip
    fps_sampled: float  # frames per second of clip time; vLLM must be started with the same
    source: Source
    source_bytes: int
    source_width: int  # upright
    source_height: int
    codec: str
    container: str
    audio: bool  # the source had audio (dropped: Qwen3-VL reads no audio)
    rotation: int  # degrees counter-clockwise applied to make the frames upright

    def json_uri(self) -> msgspec.Raw:
        """``data_uri`` as a ready-made JSON string (base64 and commas need no escaping), as
        ``PreparedImage.json_uri``: the megabytes of frames are copied into the body, not scanned."""
        return msgspec.Raw(b'"' + self.data_uri.encode("ascii") + b'"')

    def content_part(self) -> dict[str, Any]:
        """The OpenAI content part vLLM takes: ``{"type": "video_url", "video_url": {"url": ...}}``."""
        return {"type": "video_url", "video_url": {"url": self.data_uri}}


def build(sampled: Sampled, probe: ClipProbe, fps: float, source: Source, source_bytes: int) -> PreparedVideo:
    """The PreparedVideo of ``sampled`` frames from a clip ``probe`` described."""
    digest = hashlib.sha256()
    for jpeg in sampled.jpegs:
        digest.update(len(jpeg).to_bytes(8, "big"))
        digest.update(jpeg)
    frames = ",".join(pybase64.b64encode(jpeg).decode("ascii") for jpeg in sampled.jpegs)
    upright = sampled.rotation in (90, 270)
    shown = (probe.display_width, probe.height)
    source_width, source_height = (shown[1], shown[0]) if upright else shown
    interval = 1 / probe.fps if probe.fps else 0.0
    return PreparedVideo(
        data_uri=DATA_URI_PREFIX + frames,
        frames=len(sampled.jpegs),
        width=sampled.width,
        height=sampled.height,
        sha256=digest.hexdigest(),
        visual_tokens=video_prompt_tokens(len(sampled.jpegs), sampled.height, sampled.width, fps),
        duration=probe.duration if probe.duration is not None else sampled.span + interval,
        fps_sampled=fps,
        source=source,
        source_bytes=source_bytes,
        source_width=source_width,
        source_height=source_height,
        codec=probe.codec,
        container=probe.container,
        audio=probe.audio,
        rotation=sampled.rotation,
    )
