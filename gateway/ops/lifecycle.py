"""Graceful shutdown: on SIGTERM, say "not ready" first, then stop accepting and drain.

uvicorn already stops accepting and lets in-flight requests and streams finish (up to
``GATEWAY_SHUTDOWN_GRACE_SECONDS``) when it gets SIGTERM. Before that, for
``GATEWAY_SHUTDOWN_DRAIN_SECONDS``, this handler keeps serving while ``/readyz`` answers 503, so a
load balancer stops sending new work before the listening socket closes. A second SIGTERM skips
the wait.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger("gateway")


def install_drain_on_sigterm(services: Any, drain_seconds: float) -> None:
    """Wrap the server's SIGTERM handler (main thread only: tests run servers in threads)."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return
    loop = asyncio.get_running_loop()

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        if services.draining or drain_seconds <= 0:
            services.draining = True
            previous(sig, frame)
            return
        services.draining = True
        log.info("draining", detail="SIGTERM: /readyz answers 503 now", seconds=drain_seconds)
        loop.call_soon_threadsafe(loop.call_later, drain_seconds, previous, sig, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
