"""Decode worker processes with a CPU deadline per job, admission by memory, fair between keys.

``DecodePool.run(owner, data, limits, parsed, memory=..., deadline=...)`` runs
``normalise.decode`` in one of ``size`` worker processes (``worker.py``, started with
``sys.executable`` on first use). Before it starts, the job waits (round robin between owners,
until ``deadline``) for a worker slot and then for ``memory`` bytes of the process-wide
``ByteBudget``. While it runs, the pool
reads the worker's CPU time from /proc: past ``cpu_limit`` seconds (or ``wall_limit`` wall
seconds, whichever comes first) the worker is killed, the job answers 41301, and a fresh worker
is started in the background. A job belongs to the pool, not to the request: when the client
goes away the caller stops waiting, but the job keeps its slot and its memory until it ends or
is killed, so an abandoned decode can neither run unbounded nor be double-counted.

A worker whose resident size after a job (``malloc_trim`` done) is over ``recycle_rss`` is
retired and replaced, so a burst of large decodes leaves no memory behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from gateway.errors import GatewayError, ImageUndecodable, PayloadTooLarge, ServiceUnavailable
from gateway.images.containers import Parsed
from gateway.images.fair import ByteBudget, FairSlots
from gateway.images.limits import refuse
from gateway.images.memory import cpu_seconds
from gateway.images.normalise import Normalised, PixelLimits
from gateway.images.worker import HEADER, Reply, frame, header

# The errors a worker may name in a reply; anything else reads as undecodable.
ERRORS: dict[str, type[GatewayError]] = {cls.__name__: cls for cls in (ImageUndecodable, PayloadTooLarge)}
_REPLY = msgspec.msgpack.Decoder(Reply)
# Environment a worker must not inherit: prometheus-client's multiprocess directory would get a
# file per worker pid (the worker records no metrics; the gateway does).
_DROPPED_ENV = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")
_POLL_FLOOR = 0.02
_PIECE = 1 << 20
_MAX_REPLY = 64 << 20  # a normalised image is at most a few MB
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def busy(what: str) -> ServiceUnavailable:
    """503 with Retry-After: the wait for a decoder or for decode memory ran out."""
    return ServiceUnavailable(f"{what}; retry shortly", retry_after=1, reason="busy")


class Worker:
    """One child process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.jobs = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    async def send(self, meta: bytes, data: bytes) -> None:
        """Both frames of a job; the image bytes in 1 MiB pieces, so the pipe transport never
        buffers a second whole copy of them."""
        assert self.process.stdin is not None
        stdin = self.process.stdin
        stdin.write(frame(meta))
        stdin.write(header(data))
        view = memoryview(data)
        for start in range(0, len(data), _PIECE):
            stdin.write(view[start : start + _PIECE])
            await stdin.drain()
        await stdin.drain()

    async def receive(self) -> Reply:
        assert self.process.stdout is not None
        size = int.from_bytes(await self.process.stdout.readexactly(HEADER), "big")
        if size > _MAX_REPLY:  # a worker gone wrong: read no further
            raise ConnectionError(f"decode worker announced a {size}-byte reply")
        return _REPLY.decode(await self.process.stdout.readexactly(size))

    def cpu(self) -> float | None:
        return cpu_seconds(self.pid)

    async def stop(self, *, kill: bool) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                if kill:
                    self.process.kill()
                elif self.process.stdin is not None:
                    self.process.stdin.close()  # end of input: the worker exits
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class DecodePool:
    """``size`` decode worker processes behind fair slots and a memory budget."""

    def __init__(
        self,
        size: int,
        *,
        memory_budget: int,
        cpu_limit: float,
        wall_limit: float,
        recycle_rss: int,
    ) -> None:
        self.size = size
        self.cpu_limit = cpu_limit
        self.wall_limit = wall_limit
        self.recycle_rss = recycle_rss
        self.slots = FairSlots(size, size)
        self.memory = ByteBudget(memory_budget)
        self.killed = 0  # jobs abandoned past their deadline (tests, bench)
        self.retired = 0  # workers replaced because they stayed large
        self._idle: list[Worker] = []
        self._waiting: collections.deque[asyncio.Future[Worker]] = collections.deque()
        self._starting = 0
        self._all: set[Worker] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._started = False

    async def run(
        self, owner: str, data: bytes, limits: PixelLimits, parsed: Parsed, *, memory: int, deadline: float
    ) -> tuple[Normalised, str]:
        """``normalise.decode`` in a worker; 41301 past the CPU limit, 503 when no slot in time."""
        if memory > self.memory.capacity:
            raise ValueError("memory over the whole budget")  # callers check the per-image cap first
        try:
            await self.slots.acquire(owner, deadline)
        except TimeoutError:
            raise busy("all image decoders are busy") from None
        try:
            await self.memory.acquire(memory, deadline)
        except BaseException as exc:
            self.slots.release(owner)
            if isinstance(exc, TimeoutError):
                raise busy("image decode memory is in use by other requests") from None
            raise
        if not self._started:
            self._started = True
            for _ in range(self.size - 1):  # the others start now, in the background
                self._spawn_task(self._prestart())
        meta = pickle.dumps((limits, dataclasses.replace(parsed, data=b"")), protocol=pickle.HIGHEST_PROTOCOL)
        job = self._spawn_task(self._job(owner, meta, data, memory))
        result: tuple[Normalised, str] = await asyncio.shield(job)  # a gone caller leaves it to the pool
        return result

    async def _job(self, owner: str, meta: bytes, data: bytes, memory: int) -> tuple[Normalised, str]:
        try:
            worker = await self._checkout()
            return await self._supervise(worker, meta, data)
        finally:
            self.memory.release(memory)
            self.slots.release(owner)

    async def _supervise(self, worker: Worker, meta: bytes, data: bytes) -> tuple[Normalised, str]:
        reply: asyncio.Future[Reply] | None = None
        try:
            reply = asyncio.ensure_future(worker.receive())
            await worker.send(meta, data)
            started_cpu = worker.cpu()
            wall_end = time.monotonic() + self.wall_limit
            while True:
                used = 0.0
                if started_cpu is not None:
                    now_cpu = worker.cpu()
                    used = (now_cpu - started_cpu) if now_cpu is not None else 0.0
                left = min(self.cpu_limit - used, wall_end - time.monotonic())
                if left <= 0:
                    raise self._abandon(worker)
                done, _ = await asyncio.wait({reply}, timeout=max(left, _POLL_FLOOR))
                if done:
                    break
            outcome = reply.result()
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError):
            self._spawn_task(worker.stop(kill=True))
            self._all.discard(worker)
            raise refuse(
                ImageUndecodable, "image is not decodable (the decoder crashed)", "corrupt"
            ) from None
        finally:
            if reply is not None and not reply.done():
                reply.cancel()
        worker.jobs += 1
        if outcome.rss > self.recycle_rss or self._closed:
            self.retired += 1
            self._retire(worker, kill=False)
        else:
            self._release(worker)
        if outcome.result is not None:
            return outcome.result, outcome.digest
        raise refuse(ERRORS.get(outcome.error, ImageUndecodable), outcome.message, outcome.reason)

    async def _checkout(self) -> Worker:
        """An idle live worker, a new one while fewer than ``size`` exist, or the next to be free.

        Jobs never outnumber ``size`` (the slots), so a job finding none idle while ``size``
        exist or are starting gets the one being started. An idle worker may have died (the
        OOM killer): it is dropped.
        """
        while True:
            if self._idle:
                worker = self._idle.pop()
            elif len(self._all) + self._starting < self.size:
                return await self._start_worker()
            else:
                waiter: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
                self._waiting.append(waiter)
                worker = await waiter
            if worker.process.returncode is None:
                return worker
            self._all.discard(worker)
            await worker.stop(kill=True)

    def _release(self, worker: Worker) -> None:
        """A worker is free: to the job waiting longest, else to the idle list."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _abandon(self, worker: Worker) -> GatewayError:
        self.killed += 1
        self._retire(worker, kill=True)
        return refuse(
            PayloadTooLarge,
            f"image takes more than {self.cpu_limit:g}s of CPU to decode; not a real photo",
            "work",
        )

    def _retire(self, worker: Worker, *, kill: bool) -> None:
        self._all.discard(worker)
        self._spawn_task(worker.stop(kill=kill))
        if not self._closed:
            self._spawn_task(self._prestart())

    async def _prestart(self) -> None:
        """Start a worker before it is needed (all of them on first use, and replacements)."""
        if len(self._all) + self._starting < self.size:
            self._release(await self._start_worker())

    async def _start_worker(self) -> Worker:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        # The worker imports this very package, wherever the gateway was started from.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, env.get("PYTHONPATH"))))
        self._starting += 1
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.images.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:  # out of processes or file descriptors: load, not the image
            raise busy(f"image decoders could not start ({type(exc).__name__})") from None
        finally:
            self._starting -= 1
        worker = Worker(process)
        self._all.add(worker)
        if self._closed:
            await worker.stop(kill=True)
            raise ServiceUnavailable("the image decoders are shutting down", retry_after=1)
        return worker

    def _spawn_task(self, coroutine: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned job's error is not "never retrieved"

    def pids(self) -> list[int]:
        """The worker processes alive now (bench, tests)."""
        return [worker.pid for worker in self._all]

    async def aclose(self) -> None:
        """Stop every worker; jobs still running are killed (they answer 40002), none is orphaned."""
        self._closed = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(busy("the image decoders are shutting down"))
        while self._all or self._tasks:
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            # Killing a worker ends its job's wait; a worker being started sees ``_closed`` and
            # stops itself: nothing is cancelled half-way through starting or reaping a process.
            await asyncio.gather(
                *(w.stop(kill=True) for w in workers), *list(self._tasks), return_exceptions=True
            )
