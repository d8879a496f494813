"""The emulator's deterministic token count, and vLLM's context-length check.

Rule (documented in docs/emulator.md): every non-ASCII character is one token (CJK is about
that in Qwen's tokenizer); ASCII runs cost one token per 4 bytes, rounded up per text. Each
message adds the Qwen chat template's framing (``<|im_start|>role\\n`` ... ``<|im_end|>\\n``),
the prompt ends with ``<|im_start|>assistant\\n``, and each image costs
``image_prompt_tokens`` (visual tokens + 2 framing tokens), as Qwen3-VL does.
"""

from __future__ import annotations

from gateway.emulator.errors import bad_request

MESSAGE_OVERHEAD_TOKENS = 5
GENERATION_PROMPT_TOKENS = 3
ASCII_BYTES_PER_TOKEN = 4


def text_tokens(text: str) -> int:
    """Tokens one text costs under the emulator's rule."""
    ascii_chars = sum(1 for ch in text if ch < "\x80")
    return -(-ascii_chars // ASCII_BYTES_PER_TOKEN) + (len(text) - ascii_chars)


def prompt_tokens(texts: list[str], message_count: int, image_tokens: int) -> int:
    """Prompt tokens of a whole chat request."""
    return (
        sum(text_tokens(text) for text in texts)
        + message_count * MESSAGE_OVERHEAD_TOKENS
        + GENERATION_PROMPT_TOKENS
        + image_tokens
    )


def resolve_max_tokens(requested: int | None, prompt: int, max_model_len: int) -> int:
    """vLLM 0.33's ``get_max_tokens``: what is left of the context caps ``max_tokens``.

    A prompt + ``max_tokens`` over the context is not refused: the answer is shortened (and ends
    with ``finish_reason: "length"``). Only a prompt that leaves no room at all is a 400, worded
    as vLLM words it (UPSTREAM.md, "Context").
    """
    if prompt > max_model_len:
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens. However, your prompt "
            f"contains {prompt} input tokens, which exceeds this limit even without any output tokens. "
            "Please reduce the length of the input messages.",
            "input_tokens",
        )
    room = max_model_len - prompt
    if room == 0:
        raise bad_request("max_tokens must be at least 1, got 0.", "max_tokens")
    return room if requested is None else min(requested, room)
