"""All settings, from ``GATEWAY_*`` environment variables and an optional ``.env`` file.

The names are flat because CONTRACT.md §6 fixes them flat (``GATEWAY_UPSTREAM_URLS``,
``GATEWAY_IMAGE_ALLOW_PRIVATE_URLS`` ...); fields are grouped by the package that reads them.
Tests build ``Settings(...)`` directly and never touch ``os.environ``.

Secrets can come from files instead (compose ``secrets:``, Kubernetes Secret volumes): for each
field in :data:`SECRET_FIELDS`, ``GATEWAY_<NAME>_FILE=/run/secrets/...`` names a file whose
content (one trailing newline stripped) is the value. The value then never sits in the process
environment, ``docker inspect`` or ``docker compose config``. Setting both ``GATEWAY_<NAME>`` and
``GATEWAY_<NAME>_FILE`` is an error, so two sources cannot silently disagree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "GATEWAY_"
# Settings that may be read from a file named by GATEWAY_<NAME>_FILE. redis_url is one because
# it carries the Redis password (redis://gateway:PASSWORD@redis:6379/0); key_secret is the
# key-signing secret (GATEWAY_KEY_SECRET).
SECRET_FIELDS = ("upstream_api_key", "metrics_token", "redis_url", "key_secret")


def default_data_dir() -> Path:
    """Per-user data directory (XDG), shared by the CLI and the server."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vlgw"


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]
CsvInts = Annotated[list[int], NoDecode]


class SecretFilesSource(PydanticBaseSettingsSource):
    """``GATEWAY_<NAME>_FILE`` -> the file's content, for the fields in :data:`SECRET_FIELDS`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every file at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            variable = f"{ENV_PREFIX}{name.upper()}_FILE"
            path = os.environ.get(variable)
            if name not in self.settings_cls.model_fields or not path:
                continue
            if os.environ.get(f"{ENV_PREFIX}{name.upper()}"):
                raise SettingsError(f"set {ENV_PREFIX}{name.upper()} or {variable}, not both")
            try:
                content = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror}") from None
            values[name] = content.removesuffix("\n").removesuffix("\r")
        return values


class ModelGroup(BaseModel):
    """One served model and the vLLM replicas serving it (``GATEWAY_MODEL_GROUPS``, docs/models.md)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)  # vLLM's --served-model-name, sent upstream
    urls: list[str] = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    max_model_len: int | None = Field(None, ge=256)  # None: discovered, else GATEWAY_UPSTREAM_MAX_MODEL_LEN
    canary_of: str | None = None  # take this share of the named model's keys (see canary_percent)
    canary_percent: float = Field(0.0, ge=0, le=100)

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return [url.rstrip("/") for url in value]


class Settings(BaseSettings):
    """Every knob of the gateway, each with a sane default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    # --- server -------------------------------------------------------------------------
    host: str = "0.0.0.0"  # noqa: S104  (a server's listen address)
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    shutdown_grace_seconds: float = Field(30.0, ge=0)  # in-flight requests and streams may finish
    shutdown_drain_seconds: float = Field(2.0, ge=0)  # /readyz says 503 this long before closing
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_token: SecretStr | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool | None = None  # None: JSON when stdout is not a terminal
    log_prompts: bool = False
    # OpenTelemetry spans for the gateway's phases, joined to the caller's traceparent (docs/tracing.md)
    tracing_enabled: bool = False
    tracing_otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"  # OTLP over HTTP (protobuf)
    tracing_service_name: str = "vlgw"
    tracing_sample_ratio: float = Field(1.0, ge=0, le=1)  # of new traces; a sampled parent is followed
    data_dir: Path = Field(default_factory=default_data_dir)

    # --- upstream (vLLM replicas) ------------------------------------------------------
    upstream_urls: CsvList = Field(default_factory=lambda: ["http://127.0.0.1:8000"])
    upstream_urls_file: Path | None = None
    upstream_model: str | None = None
    upstream_model_aliases: CsvList = Field(default_factory=lambda: ["qwen-vl", "qwen3-vl"])
    upstream_api_key: SecretStr | None = None
    upstream_max_model_len: int = Field(32768, ge=256)
    upstream_connect_timeout: float = Field(2.0, gt=0)
    upstream_timeout: float = Field(60.0, gt=0)  # whole non-streaming answer
    upstream_first_token_timeout: float = Field(30.0, gt=0)
    upstream_chunk_timeout: float = Field(30.0, gt=0)  # gap between stream chunks
    upstream_keepalive_seconds: float = Field(10.0, gt=0)  # SSE comment while waiting
    upstream_max_connections: int = Field(512, ge=1)
    upstream_retries: int = Field(2, ge=0, le=5)
    upstream_health_interval: float = Field(5.0, gt=0)
    upstream_eject_failures: int = Field(3, ge=1)
    upstream_eject_seconds: float = Field(10.0, gt=0)
    upstream_routing: Literal["least_outstanding", "image_affinity", "round_robin"] = "image_affinity"
    upstream_affinity_load_factor: float = Field(1.5, ge=1.0)
    upstream_scrape_metrics: bool = False
    upstream_max_inflight: int = Field(64, ge=1)  # per replica; match vLLM --max-num-seqs
    upstream_queue_size: int = Field(64, ge=0)
    upstream_queue_timeout: float = Field(2.0, ge=0)
    upstream_discovery_interval: float = Field(10.0, gt=0)  # re-read urls_file, re-resolve DNS
    upstream_dns_discovery: bool = True  # an http host name -> one replica per resolved address
    # Several served models, each with its replicas (JSON list of ModelGroup); empty: one group
    # from GATEWAY_UPSTREAM_URLS / _MODEL / _MODEL_ALIASES.
    model_groups: list[ModelGroup] = Field(default_factory=list)
    upstream_eject_max_seconds: float = Field(120.0, gt=0)  # cap of the growing ejection time

    # --- store: Redis or embedded --------------------------------------------------------
    redis_url: str | None = None
    redis_timeout: float = Field(0.1, gt=0)
    redis_breaker_failures: int = Field(3, ge=1)
    redis_breaker_reset_seconds: float = Field(1.0, gt=0)

    # --- auth and limits -------------------------------------------------------------------
    auth_disabled: bool = False
    key_cache_seconds: float = Field(2.0, ge=0)
    key_secret: SecretStr | None = None  # HMAC key of new API keys' tags; None: generated, kept in the store
    key_accept_legacy: bool = True  # keys in the pre-HMAC (CRC32) format; false once all are rotated
    default_rpm: int | None = Field(None, ge=1)
    default_tpm: int | None = Field(None, ge=1)
    default_concurrency: int | None = Field(None, ge=1)
    limit_fallback: Literal["local", "open", "closed"] = "local"
    replicas: int = Field(1, ge=1)  # gateway replicas; Redis-down local limits: limit / (this x workers)
    metrics_key_labels: bool = True

    # --- request defaults ----------------------------------------------------------------
    default_max_tokens: int = Field(512, ge=1)
    max_tokens_cap: int = Field(4096, ge=1)
    default_temperature: float | None = Field(None, ge=0, le=2)  # None: upstream default

    # --- browsers ------------------------------------------------------------------------
    cors_origins: CsvList = Field(default_factory=list)  # origins allowed to call /v1/*; none: CORS off

    # --- image intake --------------------------------------------------------------------
    image_allow_private_urls: bool = False
    image_url_allowlist: CsvList = Field(default_factory=list)  # hosts always allowed
    image_allowed_ports: CsvInts = Field(default_factory=lambda: [80, 443])
    image_max_images: int = Field(4, ge=1)
    image_max_bytes: int = Field(12 * 1024 * 1024, ge=1024)  # one encoded image
    image_max_pixels: int = Field(50_000_000, ge=1)  # hard limit, decompression bombs
    image_max_side: int = Field(20_000, ge=1)
    image_pixel_budget: int = Field(1_310_720, ge=4096)  # = vLLM --mm-processor-kwargs max_pixels
    image_min_pixels: int = Field(65_536, ge=1)
    image_fetch_timeout: float = Field(5.0, gt=0)
    image_fetch_max_redirects: int = Field(3, ge=0, le=10)
    image_jpeg_quality: int = Field(90, ge=50, le=100)
    image_workers: int = Field(2, ge=1)  # decode worker processes
    image_max_concurrent: int = Field(16, ge=1)  # URL fetches at once, all keys
    image_fetch_per_key: int = Field(4, ge=1)  # URL fetches at once for one key
    image_wait_timeout: float = Field(15.0, gt=0)  # longest wait for a decoder or decode memory
    image_decode_memory: int = Field(256 * 1024 * 1024, ge=16 * 1024 * 1024)  # all decodes at once
    image_decode_max_memory: int = Field(192 * 1024 * 1024, ge=16 * 1024 * 1024)  # one decode
    image_decode_cpu_seconds: float = Field(1.0, gt=0)  # one decode's CPU, then it is killed
    image_decode_wall_seconds: float = Field(5.0, gt=0)  # one decode's wall time (a busy machine)
    image_worker_recycle_bytes: int = Field(160 * 1024 * 1024, ge=32 * 1024 * 1024)  # RSS to retire a worker

    # --- video intake (docs/video.md) ------------------------------------------------------
    video_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)  # one encoded clip
    video_max_duration: float = Field(30.0, gt=0)  # seconds
    video_max_source_pixels: int = Field(3840 * 2160, ge=1)  # one decoded frame (4K)
    video_max_source_side: int = Field(4096, ge=1)
    video_max_source_fps: float = Field(240.0, gt=0)  # phone slow motion
    video_max_source_frames: int = Field(7200, ge=1)  # frames decoded: 30 s at 240 fps
    video_max_streams: int = Field(8, ge=1)  # all streams; exactly one of them video
    video_sample_fps: float = Field(2.0, gt=0)  # = vLLM --media-io-kwargs video fps
    video_max_frames: int = Field(60, ge=2)  # frames sent upstream (even: temporal patch 2)
    video_frame_pixel_budget: int = Field(409_600, ge=4096)  # one sampled frame
    video_total_pixel_budget: int = Field(12_582_912, ge=8192)  # all sampled frames together
    video_jpeg_quality: int = Field(85, ge=50, le=100)
    video_decode_timeout: float = Field(20.0, gt=0)  # wall-clock seconds for probe + decode
    video_decode_cpu_seconds: float = Field(15.0, gt=0)  # CPU seconds of the decoding thread
    video_decode_threads: int = Field(1, ge=1, le=16)  # FFmpeg threads per clip
    video_max_decode_bytes: int = Field(512 * 1024 * 1024, ge=1024 * 1024)  # estimated, per clip
    video_workers: int = Field(1, ge=1)  # clips decoded at once (threads)
    video_max_concurrent: int = Field(4, ge=1)  # clips fetched or decoded at once (memory bound)
    video_fetch_timeout: float = Field(15.0, gt=0)

    # --- response cache ------------------------------------------------------------------
    cache_enabled: bool = True
    cache_ttl_seconds: int = Field(86_400, ge=1)
    cache_max_entries: int = Field(10_000, ge=1)  # embedded store (LRU)
    cache_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)  # embedded store: keys + values
    cache_scope: Literal["key", "global"] = "key"
    cache_any_temperature: bool = False
    cache_app_any_temperature: bool = True  # app route: identical requests cached whatever the temperature
    coalesce_timeout: float = Field(60.0, gt=0)
    idempotency_ttl_seconds: int = Field(86_400, ge=1)

    # --- presets, pre-check, feedback ----------------------------------------------------
    presets_file: Path | None = None  # None: the bundled presets
    presets_reload_seconds: float = Field(2.0, gt=0)
    precheck_default: bool = False
    precheck_dark_threshold: float = Field(96.0, ge=0, le=255)  # brightest 1 % under: too dark
    precheck_bright_threshold: float = Field(128.0, ge=0, le=255)  # darkest 1 % over: too bright
    precheck_blur_threshold: float = Field(0.30, ge=0, le=1)  # edge steepness under: blurred
    precheck_min_side: int = Field(64, ge=1)
    feedback_store_images: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then secret files, then the environment, then ``.env``."""
        secret_files = SecretFilesSource(settings_cls)
        return init_settings, secret_files, env_settings, dotenv_settings, file_secret_settings

    @field_validator(
        "upstream_urls",
        "upstream_model_aliases",
        "image_url_allowlist",
        "image_allowed_ports",
        "cors_origins",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("upstream_urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one upstream URL is needed")
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return [url.rstrip("/") for url in value]

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value:
            from gateway.store.topology import parse_redis_url  # the store owns the URL forms

            parse_redis_url(value)  # raises InvalidRedisUrl (a ValueError) naming the problem
        return value or None

    @model_validator(mode="after")
    def _groups(self) -> Settings:
        names: set[str] = set()
        for group in self.model_groups:
            for name in (group.model, *group.aliases):
                if name in names:
                    raise ValueError(f"GATEWAY_MODEL_GROUPS: the name {name!r} is used twice")
                names.add(name)
        for group in self.model_groups:
            if group.canary_of is not None and group.canary_of not in {g.model for g in self.model_groups}:
                raise ValueError(
                    f"GATEWAY_MODEL_GROUPS: {group.model} is a canary of unknown {group.canary_of!r}"
                )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.default_max_tokens > self.max_tokens_cap:
            raise ValueError("GATEWAY_DEFAULT_MAX_TOKENS is above GATEWAY_MAX_TOKENS_CAP")
        if self.key_secret is not None and len(self.key_secret.get_secret_value().encode()) < 16:
            raise ValueError("GATEWAY_KEY_SECRET must be at least 16 bytes")
        if self.image_min_pixels > self.image_pixel_budget:
            raise ValueError("GATEWAY_IMAGE_MIN_PIXELS is above GATEWAY_IMAGE_PIXEL_BUDGET")
        if self.video_max_frames % 2:
            raise ValueError("GATEWAY_VIDEO_MAX_FRAMES must be even (Qwen3-VL reads frames in pairs)")
        if self.video_max_duration * self.video_sample_fps > self.video_max_frames:
            raise ValueError(
                "GATEWAY_VIDEO_MAX_DURATION x GATEWAY_VIDEO_SAMPLE_FPS is above GATEWAY_VIDEO_MAX_FRAMES"
            )
        if self.image_decode_max_memory > self.image_decode_memory:
            raise ValueError("GATEWAY_IMAGE_DECODE_MAX_MEMORY is above GATEWAY_IMAGE_DECODE_MEMORY")
        return self


class SettingsError(Exception):
    """Settings failed validation; the message names each offending variable."""


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, turning validation errors into named messages."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "settings"
            name = f"{ENV_PREFIX}{field.upper()}" if err["loc"] else field
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
