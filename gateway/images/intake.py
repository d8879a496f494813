"""Image intake for one request: limits, fetch or decode, normalise, hash, estimate tokens.

Cheap checks (image count, encoded sizes, schemes) run for every image before any work. Then,
per image:

- a URL waits for a fetch slot (``FairSlots``: ``image_max_concurrent`` in all, at most
  ``image_fetch_per_key`` for one owner, handed round robin between owners), and the fetch
  deadline (``image_fetch_timeout``) counts from the request's arrival, wait included;
  base64 images never wait for a fetch slot;
- the container walk (bytes only, no pixel) reads the size, the scans, the frames and what the
  decoder will need, and refuses what is over a limit (``normalise.checked_parse``);
- a passthrough (no decode, resize or encode: well under a millisecond) is finished on the event
  loop, where a hop would cost more than the work;
- anything else is priced in memory from its headers (``cost.decode_memory``): over
  ``image_decode_max_memory`` it is refused (41301 ``memory``); otherwise it is decoded in a
  worker process of ``pool.DecodePool``, admitted fairly between owners and against the
  process-wide ``image_decode_memory``, and killed past ``image_decode_cpu_seconds`` of CPU
  (41301 ``work``), also when its client has gone.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from gateway.errors import GatewayError, ImageFetchFailed, PayloadTooLarge
from gateway.images.containers import Parsed
from gateway.images.cost import decode_memory
from gateway.images.fair import FairSlots
from gateway.images.fetch import Fetcher, Resolver, make_client
from gateway.images.geometry import image_prompt_tokens
from gateway.images.limits import check_count, check_encoded_size, reason_of, refuse
from gateway.images.memory import trim
from gateway.images.normalise import Normalised, PixelLimits, checked_parse, decode, is_passthrough, normalise
from gateway.images.pool import DecodePool, busy
from gateway.images.prepared import PreparedImage
from gateway.images.refs import Ref, Source, classify, decode_base64
from gateway.images.urls import UrlPolicy
from gateway.metrics import IMAGE_BYTES, IMAGE_PIXELS, IMAGE_REFUSALS, INTAKE_DURATION, VISUAL_TOKENS
from gateway.settings import Settings

# Inputs this small are walked on the event loop (microseconds); larger ones in a thread.
INLINE_MAX_BYTES = 2 * 1024 * 1024
# After an image this large, free heap is handed back to the system, TRIM_DELAY seconds later.
TRIM_AFTER_BYTES = 4 * 1024 * 1024
TRIM_DELAY = 2.0
ANONYMOUS = ""


@dataclass(frozen=True, slots=True)
class Waits:
    """How long one request's images may wait (event-loop time): fetches, and decodes."""

    fetch: float
    decode: float

    def bounded(self, deadline: float | None) -> Waits:
        return self if deadline is None else Waits(min(self.fetch, deadline), min(self.decode, deadline))


class ImageIntake:
    """Turns the image strings of a request into PreparedImages (owns its workers and HTTP client)."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        resolver: Resolver | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self._own_http = http is None
        self._http = http or make_client(settings.image_fetch_timeout, settings.image_max_concurrent)
        # An injected executor decodes in-process (tests, embedding): admission applies, the
        # CPU deadline cannot. By default decodes run in killable worker processes.
        self._executor = executor
        self._walker = ThreadPoolExecutor(max_workers=settings.image_workers, thread_name_prefix="vlgw-image")
        self.pool = DecodePool(
            settings.image_workers,
            memory_budget=settings.image_decode_memory,
            cpu_limit=settings.image_decode_cpu_seconds,
            wall_limit=settings.image_decode_wall_seconds,
            recycle_rss=settings.image_worker_recycle_bytes,
        )
        self._fetch_slots = FairSlots(settings.image_max_concurrent, settings.image_fetch_per_key)
        self._trim_pending = False
        policy = UrlPolicy(
            allow_private=settings.image_allow_private_urls,
            allowlist=settings.image_url_allowlist,
            ports=settings.image_allowed_ports,
        )
        self.fetcher = Fetcher(
            policy,
            self._http,
            resolver=resolver,
            timeout=settings.image_fetch_timeout,
            max_bytes=settings.image_max_bytes,
            max_redirects=settings.image_fetch_max_redirects,
        )

    def limits(self, pixel_budget: int | None = None) -> PixelLimits:
        """The normalisation limits; a per-call budget can only lower the configured one."""
        s = self.settings
        budget = s.image_pixel_budget if pixel_budget is None else min(pixel_budget, s.image_pixel_budget)
        return PixelLimits(
            pixel_budget=max(budget, s.image_min_pixels),
            min_pixels=s.image_min_pixels,
            max_pixels=s.image_max_pixels,
            max_side=s.image_max_side,
            jpeg_quality=s.image_jpeg_quality,
        )

    async def prepare(
        self,
        refs: Sequence[str],
        *,
        pixel_budget: int | None = None,
        owner: str = ANONYMOUS,
        deadline: float | None = None,
    ) -> list[PreparedImage]:
        """Prepare every image of one request, in order; raises the first image error.

        ``owner`` (the API key's name) is whose turn an image waits for; ``deadline`` (event-loop
        time) bounds every wait, fetches included; by default ``image_wait_timeout`` from now.
        """
        started = time.perf_counter()
        now = asyncio.get_running_loop().time()
        waits = Waits(
            fetch=now + self.settings.image_fetch_timeout,
            decode=now + self.settings.image_wait_timeout,
        ).bounded(deadline)
        try:
            check_count(len(refs), self.settings.image_max_images)
            classified = [classify(ref, self.settings.image_max_bytes) for ref in refs]
            limits = self.limits(pixel_budget)
            if len(classified) <= 1:
                return [await self._prepare_one(ref, limits, owner, waits) for ref in classified]
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [
                        group.create_task(self._prepare_one(ref, limits, owner, waits)) for ref in classified
                    ]
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None
            return [task.result() for task in tasks]
        except GatewayError as exc:
            IMAGE_REFUSALS.labels(reason=reason_of(exc)).inc()
            raise
        finally:
            INTAKE_DURATION.observe(time.perf_counter() - started)

    async def _prepare_one(self, ref: Ref, limits: PixelLimits, owner: str, waits: Waits) -> PreparedImage:
        if ref.source == "url":
            data = await self._fetch(ref.text, owner, waits.fetch)
            text = None
        else:
            text = ref.text
            data = decode_base64(text)
        check_encoded_size(len(data), self.settings.image_max_bytes)
        try:
            return await self._prepare_bytes(data, text, ref.source, limits, owner, waits)
        finally:
            self._trim_after(len(data))

    async def _prepare_bytes(
        self, data: bytes, text: str | None, source: Source, limits: PixelLimits, owner: str, waits: Waits
    ) -> PreparedImage:
        loop = asyncio.get_running_loop()
        inline = len(data) <= INLINE_MAX_BYTES
        if inline:
            parsed = checked_parse(data, limits)
        else:
            parsed = await loop.run_in_executor(self._walker, checked_parse, data, limits)
        if is_passthrough(parsed, limits):
            if inline:
                return self.process(data, text, source, limits, parsed)
            return await loop.run_in_executor(self._walker, self.process, data, text, source, limits, parsed)
        memory = decode_memory(parsed, len(data), limits)
        if memory > self.settings.image_decode_max_memory:
            raise refuse(
                PayloadTooLarge,
                f"image would need about {memory >> 20} MiB to decode; at most "
                f"{self.settings.image_decode_max_memory >> 20} MiB allowed per image",
                "memory",
            )
        result, digest = await self._decode(owner, data, limits, parsed, memory, waits.decode)
        return self._finish(len(data), text, source, result, digest)

    async def _fetch(self, url: str, owner: str, deadline: float) -> bytes:
        try:
            await self._fetch_slots.acquire(owner, deadline)
        except TimeoutError:
            raise refuse(
                ImageFetchFailed,
                f"image URL timed out after {self.settings.image_fetch_timeout:g}s (waiting its turn)",
                "timeout",
            ) from None
        try:
            return await self.fetcher.fetch(url, deadline=deadline)
        finally:
            self._fetch_slots.release(owner)

    async def _decode(
        self, owner: str, data: bytes, limits: PixelLimits, parsed: Parsed, memory: int, deadline: float
    ) -> tuple[Normalised, str]:
        if self._executor is None:
            return await self.pool.run(owner, parsed.data, limits, parsed, memory=memory, deadline=deadline)
        budget = self.pool.memory
        try:
            await budget.acquire(memory, deadline)
        except TimeoutError:
            raise busy("image decode memory is in use by other requests") from None
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, decode, data, limits, parsed)
        finally:
            budget.release(memory)

    def _trim_after(self, size: int) -> None:
        """Hand freed heap back to the system a little after a large image (glibc keeps it).

        Delayed by ``TRIM_DELAY`` so the request body and its copies are gone by then; one
        pending trim covers every large image that ends before it runs.
        """
        if size < TRIM_AFTER_BYTES or self._trim_pending:
            return
        self._trim_pending = True
        asyncio.get_running_loop().call_later(TRIM_DELAY, self._trim_now)

    def _trim_now(self) -> None:
        self._trim_pending = False
        trim()

    def process(
        self, data: bytes, text: str | None, source: Source, limits: PixelLimits, parsed: Parsed | None = None
    ) -> PreparedImage:
        """The CPU part for one image, in this thread: normalise, hash, count tokens."""
        result = normalise(data, limits, parsed)
        return self._finish(len(data), text, source, result, hashlib.sha256(result.data).hexdigest())

    def _finish(
        self, size: int, text: str | None, source: Source, result: Normalised, digest: str
    ) -> PreparedImage:
        tokens = image_prompt_tokens(
            result.height,
            result.width,
            min_pixels=self.settings.image_min_pixels,
            max_pixels=self.settings.image_pixel_budget,  # what vLLM is configured with
        )
        IMAGE_BYTES.labels(stage="in").observe(size)
        IMAGE_BYTES.labels(stage="out").observe(len(result.data))
        IMAGE_PIXELS.labels(stage="in").observe(result.source_width * result.source_height)
        IMAGE_PIXELS.labels(stage="out").observe(result.width * result.height)
        VISUAL_TOKENS.observe(tokens)
        return PreparedImage(
            data=result.data,
            mime=result.mime,
            sha256=digest,
            width=result.width,
            height=result.height,
            source_width=result.source_width,
            source_height=result.source_height,
            source_bytes=size,
            visual_tokens=tokens,
            source=source,
            passthrough=result.passthrough,
            base64_text=text if result.passthrough else None,
        )

    async def aclose(self) -> None:
        """Close what the intake owns (its HTTP client, threads and worker processes)."""
        if self._own_http:
            await self._http.aclose()
        self._walker.shutdown(wait=False, cancel_futures=True)
        await self.pool.aclose()
