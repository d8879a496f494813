"""``POST /v1/chat/completions``: intake, the emulated engine (slots, prefill, decode) and the answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx

from gateway.constants import QWEN_IMAGE_FRAME_TOKENS
from gateway.emulator.answer import answer_tokens
from gateway.emulator.engine import Engine, Sequence
from gateway.emulator.errors import EmulatorError, bad_request, error_body
from gateway.emulator.http import DropConnection, Exchange
from gateway.emulator.images import ImageInfo, load
from gateway.emulator.request import ChatRequest, decode_body, parse_chat
from gateway.emulator.shapes import DONE, Completion, sse
from gateway.emulator.state import EmulatorState
from gateway.emulator.tokens import prompt_tokens, resolve_max_tokens
from gateway.emulator.video import VideoInfo, VideoIO, load_video

SSE = "text/event-stream"


class _StreamEnded(Exception):
    """An injected mid-stream error has been sent; the stream is over."""


class ChatRun:
    """One chat request from arrival to its last byte; ``phase`` says where a cancellation caught it."""

    def __init__(self, ex: Exchange, state: EmulatorState, client: httpx.AsyncClient) -> None:
        self.ex = ex
        self.state = state
        self.client = client
        self.faults = state.faults  # a request keeps the faults it arrived under
        self.arrival = time.monotonic()
        self.phase = "intake"
        self.request_id = ex.headers.get("x-request-id") or uuid.uuid4().hex
        self.entry = state.record(ex.headers)
        self.held_tokens = 0
        self.sent_chunks = 0
        self.images: list[ImageInfo] = []

    async def run(self) -> None:
        """Answer the request, counting it as completed, failed or cancelled."""
        state = self.state
        state.chat_requests += 1
        state.active += 1
        try:
            try:
                completion, stream, include_usage = await self._intake()
            except EmulatorError as exc:
                self.entry["status"] = exc.status
                state.errors_by_status[exc.status] += 1
                raise
            self.entry["status"] = 200
            if stream:
                await self._stream(completion, include_usage)
            else:
                await self._whole(completion)
        except asyncio.CancelledError:
            state.cancel(self.request_id, self.arrival, self.phase)
            raise
        finally:
            state.active -= 1

    async def _intake(self) -> tuple[Completion, bool, bool]:
        config = self.state.config
        self.entry["body"] = self.ex.body.decode("utf-8", "replace")  # replaced by the JSON when it parses
        body = decode_body(self.ex.body)
        self.entry["body"] = body
        request = parse_chat(body, config.model, config.max_videos)
        if "x-request-id" not in self.ex.headers and request.request_id:
            self.request_id = request.request_id
        if len(request.images) > config.max_images:
            raise bad_request(
                f"At most {config.max_images} image(s) may be provided in one prompt.", "messages"
            )
        images = await self._images(request)
        videos = await self._videos(request)
        media_tokens = sum(image.tokens for image in images) + sum(video.tokens for video in videos)
        prompt = prompt_tokens(request.texts, request.message_count, media_tokens)
        max_tokens = resolve_max_tokens(request.max_tokens, prompt, config.max_model_len)
        if self.state.inject_error():
            raise EmulatorError(
                self.faults.error_status,
                f"Injected fault: the vLLM emulator failed this request on purpose "
                f"(error_status {self.faults.error_status}).",
            )
        tokens = answer_tokens(request.texts, images, self.faults.answer_tokens, videos)
        finish = "length" if len(tokens) > max_tokens else "stop"
        completion = Completion(
            id=f"chatcmpl-{self.request_id}",
            created=int(time.time()),
            model=config.model,
            prompt_tokens=prompt,
            tokens=tokens[:max_tokens],
            finish_reason=finish,
        )
        return completion, request.stream, request.include_usage

    async def _images(self, request: ChatRequest) -> list[ImageInfo]:
        config = self.state.config
        images = []
        for ref in request.images:
            sha, info = await load(
                ref.url, self.client, self.state.cache, ref.uuid, config.min_pixels, config.max_pixels
            )
            self.state.image_counts[sha] += 1
            self.entry["image_sha256"].append(sha)
            images.append(info)
        self.images = images
        return images

    async def _videos(self, request: ChatRequest) -> list[VideoInfo]:
        config = self.state.config
        io_kwargs = VideoIO(num_frames=config.video_num_frames, fps=config.video_fps)
        videos = [await load_video(url, self.client, io_kwargs) for url in request.videos]
        self.entry["video_sha256"] = [video.sha256 for video in videos]
        return videos

    @contextlib.asynccontextmanager
    async def _slot(self, prompt: int) -> AsyncIterator[None]:
        """Hold one of ``max_num_seqs`` running slots, as a request in vLLM's running batch."""
        state = self.state
        self.phase = "waiting"
        state.waiting += 1
        try:
            await state.slots.acquire()
        finally:
            state.waiting -= 1
        state.running += 1
        self.held_tokens = prompt
        state.running_tokens += prompt
        state.metrics.prompt_tokens.inc(prompt)
        try:
            yield
        finally:
            state.running -= 1
            state.running_tokens -= self.held_tokens
            state.slots.release()

    async def _prefill(self) -> None:
        if self.faults.hang:
            self.phase = "hang"
            await asyncio.Event().wait()  # never set: only the client leaving ends this
        self.phase = "prefill"
        if self.faults.prefill_ms > 0:
            await asyncio.sleep(self.faults.prefill_ms / 1000)
        self.state.metrics.ttft.observe(time.monotonic() - self.arrival)
        self.phase = "decode"

    def _finished(self, completion: Completion) -> None:
        state = self.state
        state.completed += 1
        state.metrics.finished(completion.finish_reason)
        state.metrics.e2e.observe(time.monotonic() - self.arrival)

    def _headers(self) -> list[tuple[str, str]]:
        return [("x-request-id", self.request_id)]

    @contextlib.asynccontextmanager
    async def _on_gpu(self, engine: Engine, completion: Completion) -> AsyncIterator[Sequence]:
        """Queue the request on the cost model's engine; take it out if the client leaves first."""
        if self.faults.hang:
            self.phase = "hang"
            await asyncio.Event().wait()  # never set: only the client leaving ends this
        visual = [image.tokens - QWEN_IMAGE_FRAME_TOKENS for image in self.images]
        seq = Sequence(
            images=[(image.sha256, tokens) for image, tokens in zip(self.images, visual, strict=True)],
            text_tokens=completion.prompt_tokens - sum(visual),
            prompt_tokens=completion.prompt_tokens,
            output_tokens=len(completion.tokens),
        )
        self.phase = "waiting"
        engine.submit(seq)
        self.state.metrics.prompt_tokens.inc(completion.prompt_tokens)
        try:
            yield seq
        finally:
            if seq.state != "finished":
                self.phase = (
                    "waiting" if seq.state == "waiting" else "prefill" if not seq.generated else "decode"
                )
                engine.abort(seq)

    async def _modelled_tokens(self, engine: Engine, seq: Sequence) -> AsyncIterator[int]:
        """Tokens generated so far, each time the engine's step adds some (the first after prefill)."""
        async for generated in engine.tokens(seq):
            if self.phase == "waiting":
                self.phase = "decode"
                self.state.metrics.ttft.observe(time.monotonic() - self.arrival)
            yield generated

    async def _whole(self, completion: Completion) -> None:
        engine = self.state.engine
        if engine is not None:
            async with self._on_gpu(engine, completion) as seq:
                async for _ in self._modelled_tokens(engine, seq):
                    pass
            self.state.metrics.generation_tokens.inc(len(completion.tokens))
            await self.ex.json(completion.response(), headers=self._headers())
            self._finished(completion)
            return
        async with self._slot(completion.prompt_tokens):
            await self._prefill()
            if self.faults.per_token_ms > 0 and len(completion.tokens) > 1:
                await asyncio.sleep(self.faults.per_token_ms * (len(completion.tokens) - 1) / 1000)
            self.held_tokens += len(completion.tokens)
            self.state.running_tokens += len(completion.tokens)
            self.state.metrics.generation_tokens.inc(len(completion.tokens))
        await self.ex.json(completion.response(), headers=self._headers())
        self._finished(completion)

    async def _stream(self, completion: Completion, include_usage: bool) -> None:
        # Like vLLM (Starlette's StreamingResponse), the 200 and headers go out before the engine runs.
        await self.ex.start(200, SSE, self._headers())
        try:
            if self.state.engine is not None:
                await self._stream_modelled(self.state.engine, completion)
            else:
                await self._stream_slot(completion)
            if include_usage:
                await self._emit(completion.usage_chunk())
            await self._emit(None)
        except _StreamEnded:
            return
        self._finished(completion)

    async def _stream_modelled(self, engine: Engine, completion: Completion) -> None:
        sent = 0
        async with self._on_gpu(engine, completion) as seq:
            async for generated in self._modelled_tokens(engine, seq):
                if sent == 0:
                    await self._emit(completion.role_chunk())
                for index in range(sent, generated):
                    self.state.metrics.generation_tokens.inc()
                    await self._emit(completion.token_chunk(index))
                sent = generated

    async def _stream_slot(self, completion: Completion) -> None:
        async with self._slot(completion.prompt_tokens):
            await self._prefill()
            await self._emit(completion.role_chunk())
            for index in range(len(completion.tokens)):
                if index and self.faults.per_token_ms > 0:
                    await asyncio.sleep(self.faults.per_token_ms / 1000)
                self.held_tokens += 1
                self.state.running_tokens += 1
                self.state.metrics.generation_tokens.inc()
                await self._emit(completion.token_chunk(index))

    async def _emit(self, chunk: bytes | None) -> None:
        """Send one chunk (None: the final [DONE]), applying the drop and mid-stream error faults."""
        faults = self.faults
        if faults.drop_after_chunks is not None and self.sent_chunks >= faults.drop_after_chunks:
            self.state.dropped += 1
            raise DropConnection
        if (
            faults.stream_error_after_chunks is not None
            and self.sent_chunks >= faults.stream_error_after_chunks
        ):
            self.state.errors_injected += 1
            message = "Injected fault: the vLLM emulator failed this stream on purpose."
            await self.ex.write(sse(error_body(faults.error_status, message)))
            await self.ex.finish(DONE)
            raise _StreamEnded
        if chunk is None:
            await self.ex.finish(DONE)
            return
        await self.ex.write(chunk)
        self.sent_chunks += 1


async def chat_completions(ex: Exchange, state: EmulatorState, client: httpx.AsyncClient) -> None:
    """Handle one ``POST /v1/chat/completions``."""
    await ChatRun(ex, state, client).run()
