"""The context check, as vLLM 0.33 makes it (UPSTREAM.md, "Context").

vLLM refuses a request only when its prompt alone leaves no room for an answer; when the prompt
fits but prompt + ``max_tokens`` does not, it lowers ``max_tokens`` to what is left and the answer
ends with ``finish_reason: "length"``. The gateway does the same: it refuses with 40006 only what
surely cannot fit (its prompt estimate is a lower bound), before any GPU work, and otherwise lets
vLLM shorten the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gateway.errors import ContextOverflow


class Visual(Protocol):
    """An image or a video clip as the model will see it."""

    @property
    def visual_tokens(self) -> int: ...


def check_context(*, text_tokens: int, images: Iterable[Visual], max_tokens: int, max_model_len: int) -> int:
    """Room left for the answer (``max_tokens``, shortened to fit); 40006 when there is none.

    ``text_tokens`` must be a lower bound of the prompt's text tokens, so nothing that would fit
    is refused.
    """
    media = list(images)
    visual = sum(item.visual_tokens for item in media)
    prompt = text_tokens + visual
    if prompt >= max_model_len:
        raise ContextOverflow(
            f"the prompt needs at least {prompt} tokens ({visual} for {len(media)} image(s) or clip(s), "
            f"about {text_tokens} for text), which leaves no room for an answer in the model's context of "
            f"{max_model_len} tokens; send fewer or smaller images, or a shorter prompt",
            reason="context",
        )
    return min(max_tokens, max_model_len - prompt)
