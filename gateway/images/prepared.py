"""The result of intake for one image, and the prompt-size check it feeds."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import pybase64

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
