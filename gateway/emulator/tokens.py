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
    """vLLM's check: refuse a prompt (plus requested output) over the context; default to what is left."""
    if requested is None:
        if prompt >= max_model_len:
            raise bad_request(
                f"This model's maximum context length is {max_model_len} tokens. However, your request has "
                f"{prompt} input tokens. Please reduce the length of the input messages.",
                "input_tokens",
            )
        return max_model_len - prompt
    if requested > max_model_len:
        raise bad_request(
            f"max_tokens={requested} cannot be greater than max_model_len={max_model_len}. "
            "Please request fewer output tokens.",
            "max_tokens",
        )
    if prompt + requested > max_model_len:
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{requested} output tokens and your prompt contains {prompt} input tokens, for a total of "
            f"{prompt + requested} tokens. Please reduce the length of the input prompt or the number "
            "of requested output tokens.",
            "input_tokens",
        )
    return requested
