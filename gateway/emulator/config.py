"""Emulator configuration: plain values passed in, never read from the environment."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import msgspec

from gateway.constants import QWEN_DEFAULT_MIN_PIXELS

EMULATED_VLLM_VERSION = "0.33.0"
OWNED_BY = "vlgw-emulator"
ANSWER_MARKER = "[vLLM emulator, not a model]"
COST_MODELS = ("h200",)  # --cost-model profiles (docs/emulator-cost-model.md)
# One token of Qwen3-VL-8B's KV: K and V x 36 layers x 8 KV heads x 128 dims x 2 bytes (bf16).
KV_BYTES_PER_TOKEN = 2 * 36 * 8 * 128 * 2


class Faults(msgspec.Struct, forbid_unknown_fields=True):
    """The knobs ``POST /emulator/faults`` may change at runtime."""

    prefill_ms: float = 0.0  # delay before the first token
    per_token_ms: float = 0.0  # delay between tokens
    error_rate: float = 0.0  # probability of an injected error, drawn from a seeded RNG
    error_every: int = 0  # every Nth chat request gets an injected error (0: off)
    error_status: int = 500
    hang: bool = False  # accept the request and never answer
    drop_after_chunks: int | None = None  # close the connection after N stream chunks, no [DONE]
    stream_error_after_chunks: int | None = None  # send an error event after N chunks, then [DONE]
    answer_tokens: int = 24

    def validate(self) -> Faults:
        """Return self, or raise ValueError naming the first bad knob."""
        checks = {
            "prefill_ms": self.prefill_ms >= 0,
            "per_token_ms": self.per_token_ms >= 0,
            "error_rate": 0.0 <= self.error_rate <= 1.0,
            "error_every": self.error_every >= 0,
            "error_status": 400 <= self.error_status <= 599,
            "drop_after_chunks": self.drop_after_chunks is None or self.drop_after_chunks >= 0,
            "stream_error_after_chunks": self.stream_error_after_chunks is None
            or self.stream_error_after_chunks >= 0,
            "answer_tokens": self.answer_tokens >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: invalid value {getattr(self, name)!r}")
        return self

    def updated(self, partial: dict[str, Any]) -> Faults:
        """A copy with ``partial`` applied; unknown names or wrong types raise ValueError."""
        merged = msgspec.to_builtins(self) | partial
        try:
            return msgspec.convert(merged, Faults).validate()
        except msgspec.ValidationError as exc:
            raise ValueError(str(exc)) from None


FAULT_FIELDS = frozenset(Faults.__struct_fields__)


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """How the emulator presents itself (like ``vllm serve`` flags) and which faults it starts with."""

    model: str = "qwen3-vl-8b"
    max_model_len: int = 32768
    max_images: int = 4  # --limit-mm-per-prompt '{"image": N}'
    max_videos: int = 0  # --limit-mm-per-prompt '{"video": N}'
    video_num_frames: int = 32  # --media-io-kwargs '{"video": {"num_frames": N}}' (-1: all / by fps)
    video_fps: float = 1.0  # --media-io-kwargs '{"video": {"fps": F}}'
    min_pixels: int = QWEN_DEFAULT_MIN_PIXELS
    max_pixels: int = 1_310_720  # --mm-processor-kwargs '{"max_pixels": N}'
    max_num_seqs: int = 64
    api_key: str | None = None
    fetch_timeout: float = 5.0
    mm_cache_items: int = 1024  # emulated processor cache, by item count (vLLM sizes it in GiB)
    request_log_size: int = 64  # requests kept for GET /emulator/requests (bodies are kept whole)
    seed: int = 0  # for error_rate
    # GPU cost model (off: timing comes from the fault knobs only, as before)
    cost_model: str | None = None  # "h200": prefill from the measured table, batching, KV budget
    decode_ms: float = 5.0  # one decode step's weight read (assumption, docs/emulator-cost-model.md)
    decode_ms_per_1k_kv: float = 0.044  # reading 1,000 tokens of KV in a decode step
    kv_tokens: int = 680_000  # KV budget in tokens (H200, --gpu-memory-utilization 0.9, bf16)
    max_num_batched_tokens: int = 8192  # prompt tokens prefilled per engine step (at least one request)
    enable_prefix_caching: bool = True  # vLLM's default: a repeated image's KV is reused
    # fault knobs (runtime-changeable copies live in EmulatorState.faults)
    answer_tokens: int = 24
    prefill_ms: float = 0.0
    per_token_ms: float = 0.0
    error_rate: float = 0.0
    error_every: int = 0
    error_status: int = 500
    hang: bool = False
    drop_after_chunks: int | None = None
    stream_error_after_chunks: int | None = None

    def __post_init__(self) -> None:
        positive = (
            "max_model_len",
            "min_pixels",
            "max_pixels",
            "max_num_seqs",
            "fetch_timeout",
            "mm_cache_items",
            "kv_tokens",
            "max_num_batched_tokens",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.max_images < 0 or self.max_videos < 0 or self.request_log_size < 0:
            raise ValueError("max_images, max_videos and request_log_size must not be negative")
        if self.video_num_frames == 0 or self.video_num_frames < -1 or self.video_fps <= 0:
            raise ValueError("video_num_frames must be greater than 0 or -1, and video_fps positive")
        if self.min_pixels > self.max_pixels:
            raise ValueError("min_pixels is above max_pixels")
        if self.cost_model is not None and self.cost_model not in COST_MODELS:
            raise ValueError(f"cost_model must be one of {COST_MODELS}, got {self.cost_model!r}")
        if self.cost_model is not None and self.kv_tokens < self.max_model_len:
            # vLLM refuses to start when the KV cache cannot hold one max_model_len sequence.
            raise ValueError("kv_tokens is below max_model_len: one full-length request would never fit")
        if self.decode_ms < 0 or self.decode_ms_per_1k_kv < 0:
            raise ValueError("decode_ms and decode_ms_per_1k_kv must not be negative")
        self.faults()  # validates the fault knobs

    def faults(self) -> Faults:
        """The fault knobs this config starts with."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name in FAULT_FIELDS}
        return Faults(**values).validate()
