"""The one request pipeline: every route's :class:`Ask` is answered here, JSON and streams alike.

Read :func:`serve` top to bottom for the whole path: admit (limits) → intake → context check →
cache plan → idempotency and single flight → upstream → record. Routes only decode their
contract into an ``Ask`` and render the :class:`~gateway.serving.outcome.Outcome`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway import errors
from gateway.cache import CachedAnswer, CacheStatus
from gateway.cache.broadcast import Broadcast
from gateway.cache.streams import StreamTicket
from gateway.devex import RequestRecord
from gateway.images import PreparedImage
from gateway.ops.tracing import Tracing
from gateway.serving.answers import CachePlan, cached_from_upstream, plan_cache, replay_items
from gateway.serving.ask import Ask, Chat
from gateway.serving.context import check_context
from gateway.serving.fanout import StreamBroadcast, start_pump
from gateway.serving.gate import Slot, estimate_tokens, text_tokens_lower
from gateway.serving.outcome import LiveStream, Outcome
from gateway.serving.relay import StreamResult
from gateway.serving.services import Services
from gateway.upstream.client import UpstreamClient
from gateway.upstream.stream import UpstreamStream
from gateway.video import PreparedVideo


async def serve(services: Services, ask: Ask) -> Outcome:
    """Answer ``ask``: the answer or a live stream, with its cache status, replica and usage."""
    settings = services.settings
    # 0. Model: the group serving the name asked for (or the first), canaries applied; 404 if none.
    group = services.models.resolve(ask.model, owner=ask.principal.name)
    upstream = group.client
    model = await upstream.model()
    _check_model(ask, model, group.aliases)  # the key's model allow-list (40301)
    tracing = services.tracing
    # 1. Admit: charge the rates with an upper-bound estimate, take a concurrency slot.
    estimated = estimate_tokens(
        text_bytes=ask.question.text_bytes,
        messages=ask.question.message_count,
        images=len(ask.images),
        pixel_budget=ask.pixel_budget or settings.image_pixel_budget,
        max_tokens=ask.sampling.max_tokens,
    ) + (services.videos.max_tokens if ask.video else 0)  # any clip's worst case (docs/video.md)
    with tracing.phase("admit", estimated_tokens=estimated):
        slot = await services.gate.admit(ask.principal, estimated_tokens=estimated)
    async with slot:  # settled exactly once: here on error, by the JSON answer, or by the stream's end
        # 2. Intake: fetch, check, normalise and hash the images (or sample the clip); the pre-check.
        with tracing.phase("intake", images=len(ask.images)):
            images = (
                await services.intake.prepare(
                    ask.images, pixel_budget=ask.pixel_budget, owner=ask.principal.name
                )
                if ask.images
                else []
            )
            video = await services.videos.prepare(ask.video) if ask.video else None  # sampled JPEG frames
            if services.devex.precheck_wanted(ask.precheck, ask.preset):
                await services.devex.precheck(images)
        # 3. Context: refuse only what surely cannot fit the model's context.
        check_context(
            text_tokens=text_tokens_lower(ask.question.text_bytes),
            images=[*images, video] if video else images,
            max_tokens=ask.sampling.max_tokens,
            max_model_len=upstream.max_model_len,
        )
        # 4. Cache plan: the operator's switch, the route's policy, the client's Cache-Control.
        plan = plan_cache(settings, ask)
        key = (
            services.cache.key(
                ask.key_material([i.sha256 for i in images], model, video.sha256 if video else None),
                owner=ask.principal.name,
            )
            if plan.active
            else None
        )
        call = _UpstreamCall(upstream, services.tracing, ask, model, images, video)
        # 5.–6. Idempotency and single flight around the upstream call; 7. record.
        if ask.stream:
            return await _serve_stream(services, ask, slot.hand_over(), plan, key, call)
        answer, status, replica = await _answer_once(services, ask, plan, key, call)
        spent = None if status in ("HIT", "COALESCED") else answer.usage
        await slot.settle(spent)
        _record(services, ask, images, answer.text, answer.model or model, video)
        return Outcome(
            cache=status,
            model=answer.model or model,
            replica=replica,
            headers=slot.headers(),
            answer=answer,
            spent=spent,
            logged_prompt=_logged_prompt(services, ask),
        )


def _check_model(ask: Ask, served: str, aliases: Sequence[str]) -> None:
    """The model the client named (OpenAI route); on the app route, which names none, the served
    model under its name or any of its aliases, as the key's list may name either."""
    if ask.model is None and any(ask.principal.allows_model(name) for name in (served, *aliases)):
        return
    ask.principal.check_model(ask.model or served, served=served)


class _UpstreamCall:
    """The vLLM request of one ask; its body (with the images' data) is built only when sent."""

    def __init__(
        self,
        upstream: UpstreamClient,
        tracing: Tracing,
        ask: Ask,
        model: str,
        images: Sequence[PreparedImage],
        video: PreparedVideo | None = None,
    ) -> None:
        self.upstream, self.tracing, self.ask, self.model, self.images = upstream, tracing, ask, model, images
        self.video = video
        first = images[0] if images else video
        self.affinity = first.sha256 if first else None  # that replica has the photo (or clip) cached

    def payload(self) -> dict[str, Any]:
        uris = [image.json_uri() for image in self.images]
        video = self.video.json_uri() if self.video else None
        return self.ask.question.payload(self.model, uris, self.ask, video)

    async def answer(self) -> tuple[CachedAnswer, str]:
        ask = self.ask
        with self.tracing.phase("upstream", model=self.model, stream=False):
            got = await self.upstream.chat(
                self.payload(),
                request_id=ask.request_id,
                trace=self.tracing.traceparent(ask.trace),  # vLLM's spans go under this one
                affinity=self.affinity,
            )
            self.tracing.annotate(replica=got.replica)
        return cached_from_upstream(got, keep_raw=isinstance(ask.question, Chat)), got.replica

    async def open_stream(self) -> UpstreamStream:
        ask = self.ask
        with self.tracing.phase("upstream", model=self.model, stream=True):
            stream = await self.upstream.open_stream(
                self.payload(),
                request_id=ask.request_id,
                trace=self.tracing.traceparent(ask.trace),
                affinity=self.affinity,
            )
            self.tracing.annotate(replica=stream.replica)
        return stream


async def _answer_once(
    services: Services, ask: Ask, plan: CachePlan, key: str | None, call: _UpstreamCall
) -> tuple[CachedAnswer, CacheStatus, str | None]:
    """A JSON answer from an idempotent replay, the cache, a coalesced leader, or the upstream."""
    replicas: list[str] = []

    async def compute() -> CachedAnswer:
        answer, replica = await call.answer()
        replicas.append(replica)
        return answer

    async def cached_or_computed() -> tuple[CachedAnswer, CacheStatus]:
        if key is None:
            return await compute(), services.cache.bypassed()
        return await services.cache.get_or_compute(key, compute, mode=plan.mode)

    if ask.idempotency is None:
        answer, status = await cached_or_computed()
        return answer, status, replicas[0] if replicas else None
    statuses: list[CacheStatus] = []

    async def first_attempt() -> CachedAnswer:
        answer, status = await cached_or_computed()
        statuses.append(status)
        return answer

    answer, replayed = await services.idempotency.run(
        owner=ask.principal.name,
        idempotency_key=ask.idempotency.key,
        body_hash=ask.idempotency.body_hash,
        compute=first_attempt,
    )
    status = "HIT" if replayed else (statuses[0] if statuses else "MISS")
    return answer, status, replicas[0] if replicas else None


async def _serve_stream(
    services: Services, ask: Ask, slot: Slot, plan: CachePlan, key: str | None, call: _UpstreamCall
) -> Outcome:
    """A live stream: an idempotent retry's replay or live join, else the cache's stream flight."""
    retry: StreamTicket | None = None
    if ask.idempotency is not None:
        retry = await services.idempotency.join_stream(
            owner=ask.principal.name,
            idempotency_key=ask.idempotency.key,
            body_hash=ask.idempotency.body_hash,
            replay=replay_items,
        )
    if retry is not None and retry.broadcast is not None:
        broadcast, replica = retry.broadcast, None
        status: CacheStatus = "COALESCED" if retry.status == "LIVE" else "HIT"
    else:
        try:
            broadcast, status, replica = await _stream_flight(services, plan, key, call)
        except BaseException as exc:
            if retry is not None:
                await retry.fail(exc)
            raise
        if retry is not None:
            await retry.lead(broadcast)  # the record is written when this broadcast completes
    leads = status in ("MISS", "BYPASS")
    images = call.images

    async def end(result: StreamResult) -> None:  # this client's relay ended, however it ended
        await slot.settle(result.usage if leads else None)
        if result.completed and not result.failed:
            _record(services, ask, images, result.text, result.model or call.model, call.video)

    stream = LiveStream(
        source=broadcast.subscribe(),
        started=None if broadcast.closed else ask.started,
        on_end=end,
        leads=leads,
    )
    return Outcome(
        cache=status,
        model=call.model,
        replica=replica,
        headers=slot.headers(),
        stream=stream,
        logged_prompt=_logged_prompt(services, ask),
    )


async def _stream_flight(
    services: Services, plan: CachePlan, key: str | None, call: _UpstreamCall
) -> tuple[StreamBroadcast, CacheStatus, str | None]:
    """Follow the identical stream in flight, replay a stored answer, or open the upstream and lead."""
    if key is None:
        ticket, status = StreamTicket("LEAD"), services.cache.bypassed()
    else:
        ticket, status = await services.cache.join_stream(key, mode=plan.mode, replay=replay_items)
    if ticket.broadcast is not None:
        return ticket.broadcast, status, None
    broadcast: StreamBroadcast = Broadcast()
    await ticket.lead(broadcast)  # identical requests follow this broadcast from now on
    try:
        stream = await call.open_stream()
    except Exception as exc:  # followers get the same error, as for JSON answers
        broadcast.fail(exc)
        await broadcast.close(None)
        raise
    except BaseException:
        broadcast.fail(errors.ServiceUnavailable("the request leading this stream went away; retry"))
        await broadcast.close(None)
        raise
    start_pump(stream, broadcast, call.model)
    return broadcast, status, stream.replica


def _record(
    services: Services,
    ask: Ask,
    images: Sequence[PreparedImage],
    answer: str,
    model: str,
    video: PreparedVideo | None = None,
) -> None:
    """Keep an answered request for a week, so the app's feedback button can refer to it; a clip
    is listed by its frames' hash after the images' (its frames are never stored)."""
    preset = ask.preset
    record = RequestRecord(
        request_id=ask.request_id,
        key_name=ask.principal.name,
        route=ask.route,
        prompt=ask.question.feedback_prompt,
        answer=answer,
        model=model,
        image_sha256=[image.sha256 for image in images] + ([video.sha256] if video else []),
        preset=preset.name if preset else None,
        preset_version=preset.version if preset else None,
    )
    services.devex.record_request(record, images=[image.data for image in images])


def _logged_prompt(services: Services, ask: Ask) -> str | None:
    return ask.question.feedback_prompt if services.settings.log_prompts else None
