"""The app-developer features as one object routes use: presets, pre-check, feedback, usage."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from gateway import errors, metrics
from gateway.auth import Principal
from gateway.devex.model import FeedbackBody, FeedbackEntry, RequestRecord, UsageReport, last_days, usage_day
from gateway.devex.recorder import Recorder
from gateway.devex.redis_store import RedisDevexStore
from gateway.devex.sqlite_store import SqliteDevexStore
from gateway.devex.store import DevexStore
from gateway.images.prepared import PreparedImage
from gateway.images.quality import QualityThresholds, check_quality_async
from gateway.presets import Preset, PresetRegistry
from gateway.settings import Settings
from gateway.store.embedded import EmbeddedDB
from gateway.store.redis import ResilientRedis, StoreUnavailable

MAX_USAGE_DAYS = 90
STORE_RETRY_AFTER = 1.0


@dataclass
class DevEx:
    """Presets, the image pre-check, the request log, feedback and usage, for one process."""

    settings: Settings
    presets: PresetRegistry
    store: DevexStore
    recorder: Recorder
    thresholds: QualityThresholds

    # --- presets and pre-check (request path) --------------------------------------------------

    def resolve_preset(self, principal: Principal, name: str | None) -> Preset | None:
        """The named preset if this key may use it: 40008 unknown, 40301 not this key's."""
        if name is None:
            return None
        preset = self.presets.get(name)
        principal.check_preset(preset.name)
        return preset

    def precheck_wanted(self, requested: bool | None, preset: Preset | None) -> bool:
        """The request's ``precheck`` if given, else the preset's, else ``GATEWAY_PRECHECK_DEFAULT``."""
        if requested is not None:
            return requested
        return preset.precheck if preset is not None else self.settings.precheck_default

    async def precheck(self, images: Sequence[PreparedImage]) -> None:
        """40009 with a ``hint`` when any image is too dark, too bright, blurred or too small."""
        for index, image in enumerate(images):
            try:
                await check_quality_async(
                    image.data, self.thresholds, source_size=(image.source_width, image.source_height)
                )
            except errors.ImageQualityTooLow as exc:
                metrics.PRECHECK_REFUSALS.labels(reason=exc.reason).inc()
                if len(images) > 1:
                    exc.message = f"image {index + 1}: {exc.message}"
                exc.param = "image"
                raise

    # --- hot-path records (never raise, never wait) ----------------------------------------------

    def record_request(self, record: RequestRecord, images: Sequence[bytes] = ()) -> None:
        """Keep an answered request for feedback; returns at once (written in the background)."""
        self.recorder.record_request(record, images)

    def record_usage(self, key_name: str, *, code: int, usage: tuple[int, int] | None, cached: bool) -> None:
        """Count one request in this key's daily usage; returns at once (flushed every second)."""
        self.recorder.record_usage(key_name, code=code, usage=usage, cached=cached)

    # --- /v1/feedback and /v1/usage ---------------------------------------------------------------

    async def submit_feedback(self, key_name: str, body: FeedbackBody) -> FeedbackEntry:
        """Store feedback on one of this key's requests; 40401 for an unknown or foreign request id."""
        await self.recorder.settled()  # a record written by this process a moment ago is visible
        try:
            record = await self.store.get_request(key_name, body.request_id)
            if record is None:
                raise errors.NotFound(
                    f"no request {body.request_id!r} answered for this key in the last 7 days"
                )
            entry = FeedbackEntry(
                id="",
                created=time.time(),
                key_name=key_name,
                request_id=body.request_id,
                verdict=body.verdict,
                comment=body.comment,
                expected=body.expected,
                request=record,
            )
            entry.id = await self.store.add_feedback(entry)
        except StoreUnavailable as exc:
            metrics.DEVEX_STORE_ERRORS.labels(op="feedback").inc()
            raise errors.ServiceUnavailable(
                "feedback store unavailable", retry_after=STORE_RETRY_AFTER
            ) from exc
        metrics.FEEDBACK.labels(verdict=body.verdict).inc()
        return entry

    async def usage_report(self, key_name: str, days: int) -> UsageReport:
        """This key's counters for the last ``days`` UTC days (oldest first, empty days as zeros)."""
        if not 1 <= days <= MAX_USAGE_DAYS:
            raise errors.ParameterOutOfRange(f"days must be between 1 and {MAX_USAGE_DAYS}", param="days")
        await self.recorder.flush_usage()  # this process's last second of traffic is included
        dates = last_days(time.time(), days)
        try:
            stored = await self.store.get_usage(key_name, dates)
        except StoreUnavailable as exc:
            metrics.DEVEX_STORE_ERRORS.labels(op="usage").inc()
            raise errors.ServiceUnavailable("usage store unavailable", retry_after=STORE_RETRY_AFTER) from exc
        return UsageReport(key=key_name, days=[usage_day(date, stored.get(date, {})) for date in dates])

    def feedback_between(self, since: float, until: float) -> AsyncIterator[FeedbackEntry]:
        return self.store.feedback_between(since, until)


def build_store(settings: Settings, redis: ResilientRedis | None, db: EmbeddedDB | None) -> DevexStore:
    """Redis when given, else the embedded file (``db``, or the one in ``data_dir``)."""
    if redis is not None:
        return RedisDevexStore(redis)
    return SqliteDevexStore(db if db is not None else EmbeddedDB.in_dir(settings.data_dir))


@contextlib.asynccontextmanager
async def open_devex(
    settings: Settings, redis: ResilientRedis | None = None, db: EmbeddedDB | None = None
) -> AsyncIterator[DevEx]:
    """Load presets (a broken file fails start-up), start hot reload and usage flushing; stop both."""
    async with contextlib.AsyncExitStack() as stack:
        if redis is None and db is None:
            db = EmbeddedDB.in_dir(settings.data_dir)
            stack.callback(db.close)
        presets = PresetRegistry(settings)
        await presets.start()
        stack.push_async_callback(presets.aclose)
        store = build_store(settings, redis, db)
        recorder = Recorder(store, store_images=settings.feedback_store_images)
        await recorder.start()
        stack.push_async_callback(recorder.aclose)
        yield DevEx(settings, presets, store, recorder, QualityThresholds.from_settings(settings))
