"""The result of intake for one image, and the prompt-size check it feeds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import pybase64

from gateway.errors import ContextOverflow
from gateway.images.limits import refuse
from gateway.images.refs import Source


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """One normalised image, ready to be sent upstream as a data URI."""

    data: bytes  # normalised encoded bytes sent upstream
    mime: str  # "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    sha256: str  # hex digest of ``data``: cache key and routing affinity
    width: int  # normalised size
    height: int
    source_width: int  # as displayed (EXIF orientation applied)
    source_height: int
    source_bytes: int  # encoded size as received
    visual_tokens: int  # prompt tokens upstream, incl. the 2 framing tokens
    source: Source  # "url" | "data_uri" | "base64"
    passthrough: bool = False  # ``data`` is exactly the bytes the client sent
    base64_text: str | None = field(default=None, repr=False, compare=False)  # of ``data``, when known
    _uri: list[bytes] = field(default_factory=list, init=False, repr=False, compare=False)
    _text: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    def json_uri(self) -> msgspec.Raw:
        """``data_uri()`` as a ready-made JSON string: base64 needs no escaping, so the hundreds of KB
        of an image are copied once into the upstream body instead of being scanned by the encoder."""
        if not self._uri:
            text = self.base64_text.encode("ascii") if self.base64_text else pybase64.b64encode(self.data)
            self._uri.append(b"".join((b'"data:', self.mime.encode(), b";base64,", text, b'"')))
        return msgspec.Raw(self._uri[0])

    def data_uri(self) -> str:
        """``data:<mime>;base64,...``; reuses the client's base64 when the bytes are unchanged."""
        if not self._text:
            self._text.append(bytes(self.json_uri())[1:-1].decode("ascii"))
        return self._text[0]


def prompt_tokens_estimate(text_tokens: int, images: Iterable[PreparedImage]) -> int:
    """Prompt tokens upstream: the text's plus every image's (framing included)."""
    return text_tokens + sum(image.visual_tokens for image in images)


def check_context(
    *, text_tokens: int, images: Iterable[PreparedImage], max_tokens: int, max_model_len: int
) -> int:
    """The prompt estimate; 40006 when it plus ``max_tokens`` cannot fit the model's context.

    vLLM refuses a request whose prompt plus ``max_tokens`` exceeds ``max_model_len``; refusing
    here saves the round trip and names the images as the likely cause.
    """
    images = list(images)
    image_tokens = sum(image.visual_tokens for image in images)
    prompt = text_tokens + image_tokens
    if prompt + max_tokens > max_model_len:
        raise refuse(
            ContextOverflow,
            f"prompt needs about {prompt} tokens ({image_tokens} for {len(images)} image(s), "
            f"{text_tokens} for text) plus max_tokens {max_tokens}; the model's context is "
            f"{max_model_len} tokens",
            "context",
        )
    return prompt
