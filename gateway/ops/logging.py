"""structlog set-up: JSON lines when stdout is not a terminal, one access line per request."""

from __future__ import annotations

import logging
import sys

import msgspec
import structlog

from gateway.settings import Settings

_encode = msgspec.json.Encoder(enc_hook=str).encode


def _render_json(_logger: object, _name: str, event: structlog.typing.EventDict) -> bytes:
    # msgspec instead of json.dumps: the access line is on every request's path.
    return _encode(event)


def configure_logging(settings: Settings) -> None:
    """Configure structlog and stdlib logging once per process."""
    level = getattr(logging, settings.log_level.upper())
    as_json = settings.log_json if settings.log_json is not None else not sys.stdout.isatty()
    renderer: structlog.typing.Processor = (
        _render_json if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer)
        if as_json
        else structlog.PrintLoggerFactory(sys.stdout),
        # Not cached: a few microseconds per line, and structlog.testing.capture_logs keeps working
        # in a process that built an app before (loggers cached on first use ignore it).
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, format="%(name)s %(message)s")
