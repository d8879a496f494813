"""Reading request bodies: the size limit before any parsing, then strict msgspec decoding.

Every way a body can be wrong is 40001 (41301 when too large), never a 500: invalid UTF-8,
nesting deeper than :data:`MAX_NESTING`, numbers out of range, a client that leaves mid-body.
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec
from litestar.exceptions import InternalServerException

from gateway import errors
from gateway.api.types import AnyRequest

T = TypeVar("T")
_PATH = re.compile(r"`\$\.([A-Za-z0-9_.\[\]]+)`|at `\$\.([A-Za-z0-9_.\[\]]+)`")
_FIELD = re.compile(r"field `([A-Za-z0-9_]+)`")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_UNNAMED_KEY = "`$[...]"  # how msgspec names a value of a dict it cannot name the key of

MAX_NESTING = 64
"""Arrays and objects nested deeper are refused (40001). OpenAI bodies, JSON schemas of
structured outputs included, stay under ~30; Python's recursion limit (~1,000 frames) is what a
deeper body would otherwise reach somewhere on the request's path, as a 500."""
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_PARENS = bytes.maketrans(b"[{]}", b"(())")
_RUNS = re.compile(rb"\(+|\)+")
_OPEN = ord("(")


async def read_body(request: AnyRequest, limit: int) -> bytes:
    """The whole body, refusing with 41301 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.PayloadTooLarge(f"request body over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.PayloadTooLarge(f"request body over the limit of {limit} bytes")
            chunks.append(chunk)
    except InternalServerException:  # Litestar's word for an http.disconnect before the body's end
        raise errors.InvalidBody("the client disconnected before sending the whole body") from None
    return b"".join(chunks)


def decode_json(body: bytes, schema: type[T]) -> T:
    """Decode a JSON body into ``schema``; errors become 40001 naming the field."""
    if not body:
        raise errors.InvalidBody("request body is empty; send a JSON object")
    try:
        value = msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if _UNNAMED_KEY in message:
            message = _name_the_key(body, message)
        match = _PATH.search(message) or _FIELD.search(message)
        param = next((group for group in match.groups() if group), None) if match else None
        raise errors.InvalidBody(f"invalid request: {message}", param=param) from None
    except msgspec.DecodeError as exc:
        raise errors.InvalidBody(f"request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:  # msgspec decodes a string field's bytes only when it reaches it
        raise errors.InvalidBody("request body is not valid UTF-8") from None
    except RecursionError:
        raise _too_deep(body) from None
    # A Struct's fields bound its nesting; an untyped body (the OpenAI route's) is checked here.
    if not isinstance(value, msgspec.Struct) and _nesting_exceeds(body, MAX_NESTING):
        raise _too_deep(body)
    return value


def _nesting_exceeds(body: bytes, limit: int) -> bool:
    """Whether valid JSON ``body`` nests arrays and objects more than ``limit`` deep.

    Bytes operations in C do most of the work: escapes dropped, so every quote left delimits a
    string; outside strings only brackets kept, as parentheses; the innermost pairs removed (one
    level less); then one Python step per run of parentheses, fewer than the containers msgspec
    has just built, so the check costs less than the decode before it.
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    parens = b"".join(unescaped.split(b'"')[::2]).translate(_PARENS, _NOT_BRACKETS)
    if len(parens) <= 2 * limit:
        return False
    if b"(" * (limit + 1) in parens:
        return True
    depth = 0
    for run in _RUNS.findall(parens.replace(b"()", b"")):
        if run[0] == _OPEN:
            depth += len(run)
            if depth >= limit:  # the pairs removed were one more level
                return True
        else:
            depth -= len(run)
    return False


def _too_deep(body: bytes) -> errors.InvalidBody:
    """40001 for a body nested too deep, naming the top-level field that is."""
    field = None
    try:
        fields = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):  # too deep even to skip over
        fields = {}
    for key, raw in fields.items():
        if _PLAIN_KEY.fullmatch(key) and _nesting_exceeds(bytes(raw), MAX_NESTING - 1):
            field = key
            break
    where = f" - at `$.{field}`" if field else ""
    return errors.InvalidBody(f"JSON nested more than {MAX_NESTING} levels deep{where}", param=field)


def _name_the_key(body: bytes, message: str) -> str:
    """msgspec's ``$[...]`` for a value of an untyped object, with the key it failed at named."""
    try:
        fields = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return message
    for key, raw in fields.items():
        try:
            msgspec.json.decode(raw)
        except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
            if _PLAIN_KEY.fullmatch(key):  # only a plain name goes into the message
                return message.replace(_UNNAMED_KEY, f"`$.{key}", 1)
            return message
    return message
