"""Image intake for one request: limits, fetch or decode, normalise, hash, estimate tokens.

Cheap checks (image count, encoded sizes, schemes) run for every image before any work. Each
image then holds a slot of an ``asyncio.Semaphore`` (``image_max_concurrent``: bounds the bytes
held in memory) while it is fetched and while its CPU work (base64, container walk, decode,
resize, encode, hash) runs in a small thread pool (``image_workers``: bounds the pixels decoded
at once; Pillow and hashlib release the GIL). Only a passthrough of a small image (no decode,
resize or encode: well under a millisecond) runs inline, where the thread hop would cost more.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor

import httpx

from gateway.errors import GatewayError
from gateway.images.containers import Parsed
from gateway.images.fetch import Fetcher, Resolver, make_client
from gateway.images.geometry import image_prompt_tokens
from gateway.images.limits import check_count, check_encoded_size, reason_of
from gateway.images.normalise import Limits, normalise, passthrough_parse
from gateway.images.prepared import PreparedImage
from gateway.images.refs import Ref, Source, classify, decode_base64
from gateway.images.urls import UrlPolicy
from gateway.metrics import IMAGE_BYTES, IMAGE_PIXELS, IMAGE_REFUSALS, INTAKE_DURATION, VISUAL_TOKENS
from gateway.settings import Settings

# Images this small that need no pixel work (a passthrough: base64, container walk, hash: well
# under a millisecond) are prepared on the event loop; the thread hop would cost more.
INLINE_MAX_BYTES = 2 * 1024 * 1024


class ImageIntake:
    """Turns the image strings of a request into PreparedImages (owns its pool and HTTP client)."""

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
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=settings.image_workers, thread_name_prefix="vlgw-image"
        )
        self._slots = asyncio.Semaphore(settings.image_max_concurrent)
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

    def limits(self, pixel_budget: int | None = None) -> Limits:
        """The normalisation limits; a per-call budget can only lower the configured one."""
        s = self.settings
        budget = s.image_pixel_budget if pixel_budget is None else min(pixel_budget, s.image_pixel_budget)
        return Limits(
            pixel_budget=max(budget, s.image_min_pixels),
            min_pixels=s.image_min_pixels,
            max_pixels=s.image_max_pixels,
            max_side=s.image_max_side,
            jpeg_quality=s.image_jpeg_quality,
        )

    async def prepare(self, refs: Sequence[str], *, pixel_budget: int | None = None) -> list[PreparedImage]:
        """Prepare every image of one request, in order; raises the first image error."""
        started = time.perf_counter()
        try:
            check_count(len(refs), self.settings.image_max_images)
            classified = [classify(ref, self.settings.image_max_bytes) for ref in refs]
            limits = self.limits(pixel_budget)
            if len(classified) <= 1:
                return [await self._prepare_one(ref, limits) for ref in classified]
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self._prepare_one(ref, limits)) for ref in classified]
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None
            return [task.result() for task in tasks]
        except GatewayError as exc:
            IMAGE_REFUSALS.labels(reason=reason_of(exc)).inc()
            raise
        finally:
            INTAKE_DURATION.observe(time.perf_counter() - started)

    async def _prepare_one(self, ref: Ref, limits: Limits) -> PreparedImage:
        async with self._slots:
            body = await self.fetcher.fetch(ref.text) if ref.source == "url" else None
            text = None if ref.source == "url" else ref.text
            data = decode_base64(text) if text is not None else body or b""
            check_encoded_size(len(data), self.settings.image_max_bytes)
            parsed = passthrough_parse(data, limits) if len(data) <= INLINE_MAX_BYTES else None
            if parsed is not None:
                return self.process(data, text, ref.source, limits, parsed)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self.process, data, text, ref.source, limits)

    def process(
        self, data: bytes, text: str | None, source: Source, limits: Limits, parsed: Parsed | None = None
    ) -> PreparedImage:
        """The CPU part for one decoded image: normalise, hash, count tokens (pool, or inline when cheap)."""
        result = normalise(data, limits, parsed)
        tokens = image_prompt_tokens(
            result.height,
            result.width,
            min_pixels=self.settings.image_min_pixels,
            max_pixels=self.settings.image_pixel_budget,  # what vLLM is configured with
        )
        IMAGE_BYTES.labels(stage="in").observe(len(data))
        IMAGE_BYTES.labels(stage="out").observe(len(result.data))
        IMAGE_PIXELS.labels(stage="in").observe(result.source_width * result.source_height)
        IMAGE_PIXELS.labels(stage="out").observe(result.width * result.height)
        VISUAL_TOKENS.observe(tokens)
        return PreparedImage(
            data=result.data,
            mime=result.mime,
            sha256=hashlib.sha256(result.data).hexdigest(),
            width=result.width,
            height=result.height,
            source_width=result.source_width,
            source_height=result.source_height,
            source_bytes=len(data),
            visual_tokens=tokens,
            source=source,
            passthrough=result.passthrough,
            base64_text=text if result.passthrough else None,
        )

    async def aclose(self) -> None:
        """Close what the intake owns (its HTTP client and thread pool)."""
        if self._own_http:
            await self._http.aclose()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
