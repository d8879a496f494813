"""vLLM's error answers become the contract's codes; every context-overflow wording is 40006.

The wordings are vLLM's own across versions (UPSTREAM.md, "Context"); the last one mentions
images, yet it is the context, never a bad image.
"""

from __future__ import annotations

import msgspec
import pytest

from gateway import errors
from gateway.upstream.errors import error_from_status


def vllm_400(message: str) -> bytes:
    return msgspec.json.encode(
        {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}
    )


CONTEXT_WORDINGS = [
    "This model's maximum context length is 32768 tokens. However, your prompt contains 40000 input "
    "tokens, which exceeds this limit even without any output tokens. Please reduce the length of the "
    "input messages.",
    "This model's maximum context length is 32768 tokens. However, your prompt contains 140000 "
    "characters, which exceeds this limit.",
    "Input length (40000) exceeds model's maximum context length (32768).",
    "max_tokens must be at least 1, got 0.",
    "The decoder prompt (length 40000) is longer than the maximum model length of 32768. Make sure that "
    "`max_model_len` is no smaller than the number of text tokens plus multimodal tokens. For image "
    "inputs, the number of image tokens depends on the number of images, and possibly their aspect "
    "ratios as well.",
]


@pytest.mark.parametrize("message", CONTEXT_WORDINGS, ids=range(len(CONTEXT_WORDINGS)))
def test_every_overflow_wording_is_40006(message: str) -> None:
    err = error_from_status(400, vllm_400(message), {}, "r0")
    assert isinstance(err, errors.ContextOverflow) and err.code == 40006


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("At most 4 image(s) may be provided in one prompt.", errors.TooManyImages),
        ("Failed to load image: cannot identify image file", errors.ImageUndecodable),
        ("temperature must be non-negative, got -1.", errors.InvalidBody),
    ],
)
def test_other_400s(message: str, expected: type[errors.GatewayError]) -> None:
    assert type(error_from_status(400, vllm_400(message), {}, "r0")) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (422, errors.ImageFetchFailed),
        (503, errors.UpstreamOverloaded),
        (429, errors.UpstreamOverloaded),
        (401, errors.UpstreamRejectedCredentials),
        (404, errors.UpstreamModelMissing),
        (500, errors.UpstreamError),
    ],
)
def test_statuses(status: int, expected: type[errors.GatewayError]) -> None:
    assert type(error_from_status(status, b'{"error": "Unauthorized"}', {}, "r0")) is expected


def test_an_unreadable_error_body_is_still_mapped() -> None:
    err = error_from_status(400, b"<html>bad gateway</html>", {}, "r0")
    assert isinstance(err, errors.InvalidBody)
