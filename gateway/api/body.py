"""Reading request bodies: the size limit before any parsing, then strict msgspec decoding."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from gateway import errors
from gateway.api.types import AnyRequest

T = TypeVar("T")
_PATH = re.compile(r"`\$\.([A-Za-z0-9_.\[\]]+)`|at `\$\.([A-Za-z0-9_.\[\]]+)`")
_FIELD = re.compile(r"field `([A-Za-z0-9_]+)`")


async def read_body(request: AnyRequest, limit: int) -> bytes:
    """The whole body, refusing with 41301 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.PayloadTooLarge(f"request body over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"request body over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(body: bytes, schema: type[T]) -> T:
    """Decode a JSON body into ``schema``; errors become 40001 naming the field."""
    if not body:
        raise errors.InvalidBody("request body is empty; send a JSON object")
    try:
        return msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message) or _FIELD.search(message)
        param = next((group for group in match.groups() if group), None) if match else None
        raise errors.InvalidBody(f"invalid request: {message}", param=param) from None
    except msgspec.DecodeError as exc:
        raise errors.InvalidBody(f"request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:  # msgspec decodes a string field's bytes only when it reaches it
        raise errors.InvalidBody("request body is not valid UTF-8") from None
