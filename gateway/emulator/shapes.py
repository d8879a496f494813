"""vLLM's chat.completion and chat.completion.chunk JSON shapes, and SSE framing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.emulator.http import encode

DONE = b"data: [DONE]\n\n"


def sse(obj: Any) -> bytes:
    """One Server-Sent Event carrying ``obj`` as JSON."""
    return b"data: " + encode(obj) + b"\n\n"


@dataclass(slots=True)
class Completion:
    """One answer being produced: its id, prompt size, tokens and finish reason."""

    id: str
    created: int
    model: str
    prompt_tokens: int
    tokens: list[str]
    finish_reason: str

    def usage(self, completion_tokens: int) -> dict[str, Any]:
        """The usage object, in vLLM's key order."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
            "prompt_tokens_details": None,
        }

    def response(self) -> dict[str, Any]:
        """The non-streamed ``chat.completion`` body."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.tokens),
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "tool_calls": [],
            "reasoning_content": None,
        }
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": self.finish_reason,
            "stop_reason": None,
        }
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": self.usage(len(self.tokens)),
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": choices,
                **extra,
            }
        )

    def role_chunk(self) -> bytes:
        """The first chunk: the assistant role with empty content."""
        return self._chunk(
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )

    def token_chunk(self, index: int) -> bytes:
        """Token ``index``; the last one carries the finish reason, as vLLM's last engine output does."""
        choice: dict[str, Any] = {"index": 0, "delta": {"content": self.tokens[index]}, "logprobs": None}
        if index == len(self.tokens) - 1:
            choice |= {"finish_reason": self.finish_reason, "stop_reason": None}
        else:
            choice["finish_reason"] = None
        return self._chunk([choice])

    def usage_chunk(self) -> bytes:
        """The ``stream_options.include_usage`` chunk: no choices, the usage."""
        return self._chunk([], usage=self.usage(len(self.tokens)))
