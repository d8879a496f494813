"""The emulator's answer: a deterministic description of the input, never model output.

Identical input gives identical output whatever the sampling parameters, so tests can tell
requests apart and compare them. The text always starts with the marker.
"""

from __future__ import annotations

import hashlib
import itertools

from gateway.emulator.config import ANSWER_MARKER
from gateway.emulator.images import ImageInfo
from gateway.emulator.video import VideoInfo, describe_videos

_FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


def describe_input(
    texts: list[str], images: list[ImageInfo], videos: list[VideoInfo] | None = None
) -> list[str]:
    """Words describing the request: image sizes, formats and mean colours, videos, prompt length and hash."""
    joined = "\n".join(texts)
    words = ANSWER_MARKER.split()
    words += [str(len(images)), "image:" if len(images) == 1 else "images:"]
    for image in images:
        words += [f"{image.width}x{image.height}", image.format, f"{image.mean_rgb};"]
    words += describe_videos(videos or [])
    digest = hashlib.sha256(joined.encode()).hexdigest()[:6]
    words += ["prompt", str(len(joined)), "chars,", "sha", f"{digest}."]
    return words


def answer_tokens(
    texts: list[str], images: list[ImageInfo], length: int, videos: list[VideoInfo] | None = None
) -> list[str]:
    """Exactly ``length`` tokens (words with their leading space): the description, then filler."""
    words = describe_input(texts, images, videos)
    words = list(itertools.islice(itertools.chain(words, itertools.cycle(_FILLER)), length))
    return [word if index == 0 else " " + word for index, word in enumerate(words)]
