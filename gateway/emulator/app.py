"""The emulator as a raw ASGI app: ``create_emulator_app(config)``.

Raw ASGI rather than Litestar, for two reasons. It is the *baseline* in latency benchmarks,
so each request should cost as little as possible: called in-process, a trivial GET costs about
4 µs here against about 18 µs through a one-route Litestar app (a text-only chat completion,
with its disconnect watcher, request log and metrics, about 70 µs). And it must do things a
framework hides: notice a client leaving mid-prefill (and cancel the request's task) and end
a stream without completing it so the server drops the connection.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

import httpx

from gateway.emulator import control
from gateway.emulator.chat import chat_completions
from gateway.emulator.config import EMULATED_VLLM_VERSION, OWNED_BY, EmulatorConfig
from gateway.emulator.errors import EmulatorError, error_body
from gateway.emulator.http import (
    ClientGone,
    DropConnection,
    Exchange,
    Receive,
    Scope,
    Send,
    read_body,
    wait_disconnect,
)
from gateway.emulator.state import EmulatorState

log = logging.getLogger("gateway.emulator")

Handler = Callable[[Exchange], Awaitable[None]]
CHAT_PATH = "/v1/chat/completions"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


class EmulatorApp:
    """An ASGI app standing in for ``vllm serve``; ``state`` holds its counters and faults."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.state = EmulatorState(config)
        self.started = int(time.time())
        self._client: httpx.AsyncClient | None = None
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", CHAT_PATH): self._chat,
            ("GET", "/v1/models"): self._models,
            ("GET", "/health"): self._health,
            ("GET", "/version"): self._version,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/emulator/stats"): lambda ex: control.stats(ex, self.state),
            ("GET", "/emulator/requests"): lambda ex: control.requests(ex, self.state),
            ("GET", "/emulator/faults"): lambda ex: control.get_faults(ex, self.state),
            ("POST", "/emulator/faults"): lambda ex: control.set_faults(ex, self.state),
            ("POST", "/emulator/reset"): lambda ex: control.reset(ex, self.state),
        }
        self._paths = {path for _, path in self.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _open(self) -> None:
        config = self.config
        self._client = httpx.AsyncClient(timeout=config.fetch_timeout, follow_redirects=True)
        log.warning(
            "vLLM EMULATOR, NOT A MODEL: serving %r (max_model_len=%d, max_num_seqs=%d); answers are "
            "deterministic descriptions of the input",
            config.model,
            config.max_model_len,
            config.max_num_seqs,
        )

    @property
    def client(self) -> httpx.AsyncClient:
        """The image-fetching client (opened lazily when the server runs without lifespan)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.fetch_timeout, follow_redirects=True)
        return self._client

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await read_body(receive)
        except ClientGone:
            return
        ex = Exchange(scope, body, send)
        if ex.path != CHAT_PATH:  # quick routes: no need to watch for the client leaving
            await self._handle(ex)
            return
        # The handler runs as its own task so that a disconnect (seen by the watcher) can cancel it,
        # as vLLM aborts a request whose client has gone.
        handler = asyncio.create_task(self._handle(ex))
        watcher = asyncio.create_task(wait_disconnect(receive))
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not handler.done() and not ex.complete:
                handler.cancel()
            await asyncio.wait({handler})
        finally:
            watcher.cancel()
            if not handler.done():
                handler.cancel()
        error = None if handler.cancelled() else handler.exception()
        if error is not None:
            raise error

    async def _handle(self, ex: Exchange) -> None:
        route = self.routes.get((ex.method, ex.path))
        try:
            if route is None:
                status = 405 if ex.path in self._paths else 404
                await ex.json({"detail": "Method Not Allowed" if status == 405 else "Not Found"}, status)
                return
            if not self._authorized(ex):
                if route == self._chat:  # logged too, so a test can see what a misconfigured client sent
                    entry = self.state.record(ex.headers)
                    entry.update(status=401, body=ex.body.decode("utf-8", "replace"))
                await ex.json({"error": "Unauthorized"}, 401)  # vLLM's own odd shape
                return
            await route(ex)
        except EmulatorError as exc:
            if ex.started:
                raise
            headers = [("x-request-id", ex.headers["x-request-id"])] if "x-request-id" in ex.headers else []
            await ex.json(exc.body(), exc.status, headers)
        except DropConnection:
            # Returning with the response incomplete makes the server close the connection.
            log.warning("vLLM emulator: dropping the connection mid-stream (drop_after_chunks fault)")
        except Exception:
            log.exception("vLLM emulator: unexpected error on %s %s", ex.method, ex.path)
            if not ex.started:
                await ex.json(error_body(500, "Internal Server Error"), 500)

    def _authorized(self, ex: Exchange) -> bool:
        # Like vLLM's --api-key middleware: only /v1 routes are guarded.
        key = self.config.api_key
        if key is None or not ex.path.startswith("/v1"):
            return True
        return hmac.compare_digest(ex.headers.get("authorization", "").encode(), f"Bearer {key}".encode())

    async def _chat(self, ex: Exchange) -> None:
        await chat_completions(ex, self.state, self.client)

    async def _models(self, ex: Exchange) -> None:
        config = self.config
        permission = {
            "id": f"modelperm-{config.model}",
            "object": "model_permission",
            "created": self.started,
            "allow_create_engine": False,
            "allow_sampling": True,
            "allow_logprobs": True,
            "allow_search_indices": False,
            "allow_view": True,
            "allow_fine_tuning": False,
            "organization": "*",
            "group": None,
            "is_blocking": False,
        }
        card = {
            "id": config.model,
            "object": "model",
            "created": self.started,
            "owned_by": OWNED_BY,
            "root": config.model,
            "parent": None,
            "max_model_len": config.max_model_len,
            "permission": [permission],
        }
        await ex.json({"object": "list", "data": [card]})

    async def _health(self, ex: Exchange) -> None:
        await ex.respond(200, b"", content_type=None)

    async def _version(self, ex: Exchange) -> None:
        await ex.json({"version": f"{EMULATED_VLLM_VERSION}-emulator"})

    async def _metrics(self, ex: Exchange) -> None:
        await ex.respond(200, self.state.metrics.render(), PROMETHEUS)


def create_emulator_app(config: EmulatorConfig | None = None) -> EmulatorApp:
    """Build the emulator; its counters are at ``app.state``."""
    return EmulatorApp(config or EmulatorConfig())
