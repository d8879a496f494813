"""Video intake for one request: bytes (fetch or base64), probe, bounded decode, sample, encode.

A clip holds one of ``video_max_concurrent`` slots while it is fetched and processed (bounds the
bytes held); its CPU work runs in a pool of ``video_workers`` threads (bounds the decoders, each
admitted by its memory estimate), never on the event loop. When the caller is cancelled (the
client left), the decode stops at its next frame.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor

import av
import httpx

from gateway.errors import GatewayError, PayloadTooLarge
from gateway.images.fetch import Fetcher, Resolver, make_client
from gateway.images.urls import UrlPolicy
from gateway.metrics import VIDEO_INTAKE_DURATION, VIDEO_REFUSALS, VIDEO_TOKENS
from gateway.settings import Settings
from gateway.video.decode import Budget, Sampler, admit_memory
from gateway.video.geometry import max_video_tokens, plan
from gateway.video.limits import VideoLimits, too_large, undecodable
from gateway.video.prepared import PreparedVideo, build
from gateway.video.probe import open_clip, probe, video_stream
from gateway.video.source import Source, classify, decode_base64


class VideoIntake:
    """Turns a request's ``video`` string into a PreparedVideo (owns its pool and HTTP client)."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        resolver: Resolver | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.limits = VideoLimits.from_settings(settings)
        self.max_tokens = max_video_tokens(
            self.limits
        )  # any clip's cost at most: the tpm charge at admission
        self._own_http = http is None
        self._http = http or make_client(settings.video_fetch_timeout, settings.video_max_concurrent)
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=settings.video_workers, thread_name_prefix="vlgw-video"
        )
        self._slots = asyncio.Semaphore(settings.video_max_concurrent)
        policy = UrlPolicy(
            allow_private=settings.image_allow_private_urls,
            allowlist=settings.image_url_allowlist,
            ports=settings.image_allowed_ports,
            media="video",
        )
        self.fetcher = Fetcher(
            policy,
            self._http,
            resolver=resolver,
            timeout=settings.video_fetch_timeout,
            max_bytes=settings.video_max_bytes,
            max_redirects=settings.image_fetch_max_redirects,
            media="video",
        )

    async def prepare(self, ref: str) -> PreparedVideo:
        """Prepare one clip: 40003/40004 for its URL, 40010 when undecodable, 41302 over a limit."""
        started = time.perf_counter()
        try:
            video = await self._prepare(ref)
        except GatewayError as exc:
            VIDEO_REFUSALS.labels(reason=exc.reason or "other").inc()
            raise
        finally:
            VIDEO_INTAKE_DURATION.observe(time.perf_counter() - started)
        VIDEO_TOKENS.observe(video.visual_tokens)
        return video

    async def _prepare(self, ref: str) -> PreparedVideo:
        classified = classify(ref, self.limits)
        async with self._slots:
            # Base64 text is decoded in the pool too: 12 MB of it is ~10 ms of CPU.
            data = await self._fetch(classified.text) if classified.source == "url" else classified.text
            cancelled = threading.Event()
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(
                    self._executor, self.process, data, classified.source, cancelled
                )
            except asyncio.CancelledError:
                cancelled.set()
                raise

    async def _fetch(self, url: str) -> bytes:
        try:
            return await self.fetcher.fetch(url)
        except PayloadTooLarge as exc:
            raise too_large(exc.message, "bytes") from None

    def process(
        self, clip: bytes | str, source: Source, cancelled: threading.Event | None = None
    ) -> PreparedVideo:
        """The CPU part for one clip (bytes, or base64 text; runs in the pool): decode, probe, sample."""
        limits = self.limits
        budget = Budget(limits, cancelled or threading.Event())
        data = decode_base64(clip) if isinstance(clip, str) else clip
        limits.check_bytes(len(data))
        try:
            with open_clip(data) as container:
                stream = video_stream(container, limits)
                found = probe(container, stream, limits)
                frame_plan = plan(found.display_width, found.height, found.duration, limits)
                admit_memory(found, frame_plan, limits)
                budget.check()
                sampled = Sampler(found, frame_plan, limits, budget).run(container, stream)
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise undecodable(f"video could not be decoded ({type(exc).__name__})", "corrupt") from None
        return build(sampled, found, limits.sample_fps, source, len(data))

    async def aclose(self) -> None:
        """Close what the intake owns (its HTTP client and thread pool)."""
        if self._own_http:
            await self._http.aclose()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
