"""The replica pool: which vLLM replicas exist, which are fit to serve, and who gets the next request.

``lease()`` is the one way to use a replica: it chooses (balancer), admits or queues (admission),
counts the request in flight while held; ``report()`` feeds passive outlier detection
(replica.py's state machine). Background tasks run the active health checks (health.py) and
reload the replica set (discovery.py). See docs/replicas.md for the semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import structlog

from gateway import errors, metrics
from gateway.settings import Settings
from gateway.upstream import balancer, health
from gateway.upstream.admission import (
    MIN_RETRY_AFTER,
    AdmissionQueue,
    QueueFull,
    shed_retry_after,
    unavailable,
)
from gateway.upstream.discovery import Resolver, UrlSource, reconcile
from gateway.upstream.replica import FAILURES, Outcome, Replica

log = structlog.get_logger("gateway.upstream")


AFFINITY_SLACK_DIVISOR = 8  # slack = upstream_max_inflight / 8: 8 of vLLM's default 64 sequences


class ReplicaPool:
    """N vLLM replicas behind one ``lease()``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        name_prefix: str = "r",
    ) -> None:
        self.settings = settings
        self.name_prefix = name_prefix  # replica names: r0, r1 ... (another model group: "<model>/r0")
        self.http = http
        self._clock = clock
        self._rng = rng or random.Random()
        self._round_robin = balancer.RoundRobin()
        self._source = UrlSource(
            settings.upstream_urls,
            settings.upstream_urls_file,
            dns=settings.upstream_dns_discovery,
            resolver=resolver,
        )
        self._names: dict[str, str] = {}  # URL -> name, forever: names stay stable across reloads
        self._replicas: list[Replica] = []
        self._model: str | None = settings.upstream_model
        self.max_model_len: int | None = None
        self._queue = AdmissionQueue(
            settings.upstream_queue_size, settings.upstream_queue_timeout, self._release
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._headers: dict[str, str] = {}
        if settings.upstream_api_key is not None:
            self._headers["authorization"] = f"Bearer {settings.upstream_api_key.get_secret_value()}"
        self._check_timeout = httpx.Timeout(
            settings.upstream_health_interval, connect=settings.upstream_connect_timeout
        )
        # Optimistic until the first check; names needing a DNS lookup join in start().
        self._apply(self._source.initial_urls(), healthy=True)

    # --- public ------------------------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        """The served model: ``upstream_model`` when set, else the first discovered."""
        return self._model

    @property
    def replicas(self) -> list[Replica]:
        return list(self._replicas)

    def by_name(self, name: str) -> Replica | None:
        """The replica called ``name`` (r0, r1 ...), if it is still in the pool."""
        return next((replica for replica in self._replicas if replica.name == name), None)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def ready(self) -> bool:
        """At least one replica is in rotation (for /readyz)."""
        return any(r.in_rotation() for r in self._replicas)

    async def start(self) -> None:
        """Load the replica set, check every replica once, then keep doing both in the background."""
        await self.refresh()
        await self.check()
        self._tasks = [
            asyncio.create_task(
                self._every(self.settings.upstream_health_interval, self.check), name="health"
            ),
            asyncio.create_task(
                self._every(self.settings.upstream_discovery_interval, self.refresh), name="discovery"
            ),
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        closing = errors.ServiceUnavailable("gateway is shutting down", retry_after=MIN_RETRY_AFTER)
        self._queue.fail_all(closing)

    @contextlib.asynccontextmanager
    async def lease(
        self,
        *,
        affinity: str | None = None,
        exclude: frozenset[str] = frozenset(),
        max_wait: float | None = None,
    ) -> AsyncIterator[Replica]:
        """Hold a replica for one request; ``exclude`` names replicas already tried.

        Waits (bounded FIFO) when every eligible replica is at ``upstream_max_inflight``; raises
        ServiceUnavailable at once when the queue is full or no replica is eligible. ``max_wait``
        shortens the queue wait (the request's remaining deadline).
        """
        replica = await self._acquire(affinity, exclude, max_wait)
        started = self._clock()
        replica.lease_started(started)
        try:
            yield replica
            now = self._clock()
            if replica.consecutive_failures == 0 and now >= replica.overloaded_until:
                replica.observed(now, now - started)  # only answers count: a refusal is fast, not good
        finally:
            replica.lease_ended(started)
            self._release(replica)

    def report(self, replica: Replica, outcome: Outcome, retry_after: float | None = None) -> None:
        """How a request on ``replica`` went: feeds outlier ejection and Retry-After avoidance."""
        now = self._clock()
        s = self.settings
        if outcome == "ok":
            if replica.succeeded(now, s.upstream_eject_seconds):
                log.info("upstream_readmitted", replica=replica.name, by="probe_request")
        elif outcome == "overloaded":
            replica.overloaded(now, retry_after)
            replica.last_error = "overloaded"
        elif outcome in FAILURES:
            replica.last_error = outcome
            replica.consecutive_failures += 1
            if replica.half_open(now):
                self._eject(replica, now, outcome)
            elif replica.ejected_until is None and replica.consecutive_failures >= s.upstream_eject_failures:
                if any(r.in_rotation() for r in self._replicas if r is not replica):
                    self._eject(replica, now, outcome)
                else:
                    log.warning("upstream_not_ejecting_last", replica=replica.name, reason=outcome)
        self._publish(replica)
        self._dispatch()

    def snapshot(self) -> dict[str, Any]:
        """Per replica, for /readyz and operators: URL, health, ejection, load, last error."""
        now = self._clock()
        return {r.name: r.describe(now, self._model) for r in self._replicas}

    # --- background work ---------------------------------------------------------------------------

    async def check(self) -> None:
        """One round of active health checks (and load scrapes) over every replica."""
        await asyncio.gather(*(self._check(r) for r in list(self._replicas)))
        self._dispatch()

    async def refresh(self) -> None:
        """Re-read the replica set (file, DNS); new replicas are checked before taking traffic."""
        added = self._apply(await self._source.urls(), healthy=False)
        if added:
            await asyncio.gather(*(self._check(r) for r in added))
            self._dispatch()

    async def _every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:  # a background loop must outlive any one bad round
                log.exception("upstream_background_error", job=getattr(job, "__name__", "?"))

    async def _check(self, replica: Replica) -> None:
        result = await health.probe(
            self.http,
            replica.url,
            model=self._model,
            headers=self._headers,
            timeouts=self._check_timeout,
            confirm_failure=replica.healthy,
        )
        now = self._clock()
        replica.last_check = now
        replica.models = result.models
        if result.ok and self._model is None and result.models:
            self._model = result.models[0]
            log.info("upstream_model_discovered", model=self._model, replica=replica.name)
        if result.ok and result.max_model_len and self.max_model_len is None:
            self.max_model_len = result.max_model_len
        replica.max_model_len = result.max_model_len
        if result.ok != replica.healthy:
            log.info("upstream_health_changed", replica=replica.name, healthy=result.ok, error=result.error)
        replica.healthy = result.ok
        if not result.ok:
            replica.last_error = result.error
        elif replica.half_open(now):
            replica.readmit(now)
            log.info("upstream_readmitted", replica=replica.name, by="health_check")
        if self.settings.upstream_scrape_metrics and result.ok:
            sample = await health.scrape(self.http, replica.url, timeouts=self._check_timeout)
            if sample is not None:
                replica.waiting, replica.kv_usage, replica.scraped_at = sample.waiting, sample.kv_usage, now
        self._publish(replica)

    def _apply(self, urls: list[str], *, healthy: bool) -> list[Replica]:
        """Make the replica list match ``urls``, keeping state (and names) of those that stay."""
        self._replicas, added, removed = reconcile(
            self._replicas, urls, self._names, healthy=healthy, prefix=self.name_prefix
        )
        for gone in removed:  # in-flight leases keep their object until released
            metrics.UPSTREAM_HEALTHY.labels(replica=gone.name).set(0)
        if added or removed:
            log.info(
                "upstream_replicas_changed",
                added=[r.name for r in added],
                removed=[r.name for r in removed],
                replicas=len(self._replicas),
            )
        for replica in added:
            self._publish(replica)
        return added

    # --- choosing and admission --------------------------------------------------------------------

    async def _acquire(
        self, affinity: str | None, exclude: frozenset[str], max_wait: float | None
    ) -> Replica:
        started = self._clock()
        replica = self._grant(affinity, exclude)  # raises when nothing is eligible
        if replica is not None:
            metrics.QUEUE_WAIT.observe(0.0)
            return replica
        try:
            replica = await self._queue.wait(affinity, exclude, max_wait)
        except QueueFull:
            metrics.ADMISSION_REJECTIONS.inc()
            raise errors.ServiceUnavailable(
                "every upstream replica is at capacity",
                retry_after=shed_retry_after(self.settings.upstream_queue_timeout),
            ) from None
        except TimeoutError:
            metrics.ADMISSION_REJECTIONS.inc()
            metrics.QUEUE_WAIT.observe(self._clock() - started)
            raise errors.ServiceUnavailable(
                "timed out waiting for an upstream slot",
                retry_after=shed_retry_after(self.settings.upstream_queue_timeout),
            ) from None
        metrics.QUEUE_WAIT.observe(self._clock() - started)
        return replica

    def _grant(self, affinity: str | None, exclude: frozenset[str]) -> Replica | None:
        """Choose and reserve a replica; None when all eligible are full; raises when none is eligible."""
        now = self._clock()
        eligible = [r for r in self._replicas if r.name not in exclude and r.eligible(now)]
        if not eligible:
            raise unavailable(self._replicas, now, exclude, self.settings.upstream_health_interval)
        cap = self.settings.upstream_max_inflight
        free = [r for r in eligible if r.has_room(now, cap)]
        if not free:
            return None
        fresh_for = 3 * self.settings.upstream_health_interval

        def load(r: Replica) -> float:
            return r.load(now, fresh_for)

        cost = balancer.latency_cost(free, load, now)
        routing = self.settings.upstream_routing
        decision: balancer.Decision
        if routing == "round_robin":
            replica, decision = self._round_robin.pick(free), "round_robin"
        elif routing == "image_affinity" and affinity:
            slack = max(1.0, cap / AFFINITY_SLACK_DIVISOR)  # a few more sequences in a batch are cheap
            replica, decision = balancer.by_affinity(
                affinity,
                eligible,
                free,
                load,
                self.settings.upstream_affinity_load_factor,
                self._rng,
                cost,
                slack,
            )
        else:
            replica, decision = balancer.power_of_two(free, cost, self._rng), "least_outstanding"
        metrics.ROUTING_DECISIONS.labels(decision=decision).inc()
        if replica.half_open(now):
            replica.probing = True
        replica.inflight += 1
        metrics.UPSTREAM_INFLIGHT.labels(replica=replica.name).inc()
        return replica

    def _release(self, replica: Replica) -> None:
        replica.inflight -= 1
        replica.probing = False  # a probe that ended unreported leaves the replica half-open
        metrics.UPSTREAM_INFLIGHT.labels(replica=replica.name).dec()
        self._dispatch()

    def _dispatch(self) -> None:
        if len(self._queue):
            self._queue.dispatch(self._grant)

    def _eject(self, replica: Replica, now: float, reason: str) -> None:
        s = self.settings
        seconds = replica.eject(now, s.upstream_eject_seconds, s.upstream_eject_max_seconds)
        metrics.UPSTREAM_EJECTIONS.labels(replica=replica.name).inc()
        log.warning(
            "upstream_ejected",
            replica=replica.name,
            reason=reason,
            seconds=seconds,
            ejections=replica.ejections,
        )

    def _publish(self, replica: Replica) -> None:
        metrics.UPSTREAM_HEALTHY.labels(replica=replica.name).set(1 if replica.in_rotation() else 0)
