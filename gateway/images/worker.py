"""A decode worker process: ``python -m gateway.images.worker``, driven by ``pool.DecodePool``.

It reads jobs from stdin and writes replies to stdout, each a frame: an 8-byte big-endian
length and a payload. A job, from the gateway, is two frames: a pickle of ``normalise.decode``'s
arguments without the image bytes (``limits``, ``parsed`` with empty ``data``), then the bytes
themselves, raw, so the gateway never holds a second copy of a 12 MB image to send it.
A reply is a ``Reply`` in msgpack, never a pickle: the worker handles hostile bytes, and a
decoder bug it hits must not become code run by the gateway when the gateway reads the reply.
After a job the worker hands freed heap back to the system (``malloc_trim``) and reports its
resident size, so the pool can retire a worker that stays large.

A decode cannot be interrupted from outside a C call, and a thread cannot be killed: running it
here lets the pool kill a decode past its CPU deadline and start a fresh worker.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import sys
from typing import IO

import msgspec

from gateway.errors import GatewayError
from gateway.images.memory import rss_bytes, trim
from gateway.images.normalise import Normalised, decode

HEADER = 8


class Reply(msgspec.Struct, frozen=True):
    """What a worker answers for one job: the result, or an error by name (pool.ERRORS)."""

    rss: int
    result: Normalised | None = None
    digest: str = ""
    error: str = ""
    message: str = ""
    reason: str = ""


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One frame's payload; None at end of input."""
    header = stream.read(HEADER)
    if len(header) < HEADER:
        return None
    size = int.from_bytes(header, "big")
    payload = stream.read(size)
    return payload if len(payload) == size else None


def frame(payload: bytes) -> bytes:
    return header(payload) + payload


def header(payload: bytes) -> bytes:
    return len(payload).to_bytes(HEADER, "big")


def run_job(meta: bytes, data: bytes) -> Reply:
    limits, parsed = pickle.loads(meta)  # noqa: S301 - written by the gateway that started us
    parsed = dataclasses.replace(parsed, data=data)
    try:
        result, digest = decode(data, limits, parsed)
    except GatewayError as exc:
        reason = exc.reason
        return Reply(0, error=type(exc).__name__, message=exc.message, reason=str(reason or "corrupt"))
    except Exception as exc:  # a decoder fault is the image's, not the gateway's
        message = f"image is not decodable ({type(exc).__name__})"
        return Reply(0, error="ImageUndecodable", message=message, reason="corrupt")
    return Reply(0, result=result, digest=digest)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the gateway, which stops us
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print from a library goes to stderr, never into the result stream
    jobs = sys.stdin.buffer
    encoder = msgspec.msgpack.Encoder()
    while (meta := read_frame(jobs)) is not None and (data := read_frame(jobs)) is not None:
        reply = run_job(meta, data)
        trim()
        results.write(frame(encoder.encode(msgspec.structs.replace(reply, rss=rss_bytes()))))
        results.flush()


if __name__ == "__main__":
    main()
