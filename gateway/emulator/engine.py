"""The emulated GPU: continuous batching over modelled time (the cost model, ``--cost-model``).

:class:`Scheduler` is a pure state machine, so tests drive it on a fake clock: ``plan()`` picks
the next engine step (admit waiting requests while the batch and the KV budget have room, first
come first served; prefill newly admitted ones up to a token budget; decode one token for every
other running one) and says how long it takes; ``complete(step)`` applies it. :class:`Engine`
runs that loop in real time on the event loop, sleeping each step's modelled duration.

Like vLLM's scheduler, a request at the head of the queue that does not fit blocks those behind
it, so one big image holds back small ones. Simplifications (docs/emulator-cost-model.md): KV is
reserved for prompt + answer on admission (vLLM allocates as it goes and may preempt), prefill
is not chunked across steps, and the prefix cache is modelled per image (see PrefixCache).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gateway.emulator.cost import DecodeCost, prefill_ms


@dataclass(eq=False, slots=True)
class Sequence:
    """One request inside the engine: its images (sha, visual tokens), text tokens and answer length."""

    images: list[tuple[str, int]]
    text_tokens: int
    prompt_tokens: int
    output_tokens: int
    generated: int = 0
    state: str = "new"  # new, waiting, running, finished, aborted
    prefill_ms: float = 0.0  # what its prefill cost, once done
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def kv_tokens(self) -> int:
        """KV the request holds while running (reserved whole on admission)."""
        return self.prompt_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Step:
    """One engine step: prefills with their modelled times, the decode batch, its duration."""

    prefills: list[tuple[Sequence, float, int]]  # request, its prefill ms, visual tokens it encodes
    decodes: list[Sequence]
    prefill_s: float
    decode_s: float

    @property
    def seconds(self) -> float:
        """Modelled duration of the step."""
        return self.prefill_s + self.decode_s


class PrefixCache:
    """vLLM's automatic prefix cache, per image: an image's KV computed once is reused by later requests.

    Keyed by the image's content hash alone, i.e. it assumes the image sits after the same
    prefix (one system prompt per app), which flatters a client that sends repeats straight to
    vLLM. Cached blocks live in free KV, so the cache holds at most ``capacity`` tokens (LRU).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, int] = OrderedDict()
        self._held = 0
        self.queries = 0
        self.hits = 0

    def hit(self, sha: str) -> bool:
        """Whether ``sha``'s KV is cached (counted, and refreshed when it is)."""
        self.queries += 1
        if sha not in self._items:
            return False
        self.hits += 1
        self._items.move_to_end(sha)
        return True

    def add(self, sha: str, tokens: int) -> None:
        """Remember an image just prefilled, evicting the least recently used."""
        if sha in self._items:
            return
        self._items[sha] = tokens
        self._held += tokens
        while self._held > self.capacity and self._items:
            self._held -= self._items.popitem(last=False)[1]

    def clear(self) -> None:
        """Forget everything and zero the counters."""
        self._items.clear()
        self._held = self.queries = self.hits = 0


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """The engine's knobs, as ``vllm serve`` flags and the cost model's settings set them."""

    max_num_seqs: int
    kv_tokens: int
    max_num_batched_tokens: int
    decode: DecodeCost
    prefix_cache: bool


class Scheduler:
    """Continuous batching over modelled time; counts the GPU-seconds it spends."""

    def __init__(self, limits: EngineLimits) -> None:
        self.limits = limits
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.kv_used = 0
        self.cache = PrefixCache(limits.kv_tokens if limits.prefix_cache else 0)
        self.reset_totals()

    def reset_totals(self) -> None:
        """Zero the GPU-time counters (requests in flight are left alone)."""
        self.prefill_seconds = 0.0
        self.decode_seconds = 0.0
        self.steps = 0
        self.prefills = 0
        self.visual_tokens = 0  # visual tokens actually encoded (cache hits excluded)

    @property
    def kv_usage(self) -> float:
        """Fraction of the KV budget held by running requests."""
        return min(1.0, self.kv_used / self.limits.kv_tokens)

    def add(self, seq: Sequence) -> None:
        """Queue a request."""
        seq.state = "waiting"
        self.waiting.append(seq)

    def abort(self, seq: Sequence) -> None:
        """Drop a request whose client left, freeing its slot and KV."""
        if seq.state == "waiting":
            self.waiting.remove(seq)
        elif seq.state == "running":
            self.running.remove(seq)
            self.kv_used -= seq.kv_tokens
        if seq.state != "finished":
            seq.state = "aborted"

    def _admit(self) -> None:
        limits = self.limits
        while self.waiting and len(self.running) < limits.max_num_seqs:
            head = self.waiting[0]
            if self.kv_used + head.kv_tokens > limits.kv_tokens:
                return  # first come first served: the head blocks the queue until KV frees up
            self.waiting.popleft()
            head.state = "running"
            self.running.append(head)
            self.kv_used += head.kv_tokens

    def _prefill(self, seq: Sequence) -> tuple[Sequence, float, int]:
        visual = []
        for sha, tokens in seq.images:
            if not (self.limits.prefix_cache and self.cache.hit(sha)):
                visual.append(tokens)
        return seq, prefill_ms(visual, seq.text_tokens), sum(visual)

    def plan(self) -> Step | None:
        """The next step, or None when there is nothing to run."""
        self._admit()
        prefills: list[tuple[Sequence, float, int]] = []
        decodes: list[Sequence] = []
        budget = self.limits.max_num_batched_tokens
        for seq in self.running:
            if seq.generated:
                decodes.append(seq)
            elif not prefills or seq.prompt_tokens <= budget:
                # at least one prefill per step, however big; then as many as fit the token budget
                budget -= seq.prompt_tokens
                prefills.append(self._prefill(seq))
        if not prefills and not decodes:
            return None
        context = sum(seq.prompt_tokens + seq.generated for seq in decodes)
        decode_s = self.limits.decode.step_ms(context) / 1000 if decodes else 0.0
        return Step(prefills, decodes, sum(ms for _, ms, _ in prefills) / 1000, decode_s)

    def complete(self, step: Step) -> list[Sequence]:
        """Apply ``step``: prefills give their first token, decodes one more; returns who progressed."""
        self.steps += 1
        self.prefill_seconds += step.prefill_s
        self.decode_seconds += step.decode_s
        touched = []
        for seq, ms, visual in step.prefills:
            self.prefills += 1
            self.visual_tokens += visual
            seq.prefill_ms = ms
            for sha, tokens in seq.images:
                if self.limits.prefix_cache:
                    self.cache.add(sha, tokens)
            touched.append(seq)
        touched += step.decodes
        progressed = []
        for seq in touched:
            if seq.state != "running":
                continue  # aborted during the step: the GPU time is spent all the same
            seq.generated += 1
            if seq.generated >= seq.output_tokens:
                seq.state = "finished"
                self.running.remove(seq)
                self.kv_used -= seq.kv_tokens
            progressed.append(seq)
        return progressed

    @property
    def gpu_seconds(self) -> float:
        """Modelled GPU busy time so far: prefill plus decode."""
        return self.prefill_seconds + self.decode_seconds


class Engine:
    """Runs a Scheduler in real time: one task steps while there is work and exits when idle."""

    def __init__(self, limits: EngineLimits) -> None:
        self.scheduler = Scheduler(limits)
        self._task: asyncio.Task[None] | None = None

    def submit(self, seq: Sequence) -> None:
        """Queue ``seq`` and make sure the loop runs."""
        self.scheduler.add(seq)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def abort(self, seq: Sequence) -> None:
        """Take ``seq`` out (its client left)."""
        self.scheduler.abort(seq)

    async def tokens(self, seq: Sequence) -> AsyncIterator[int]:
        """Yield ``seq``'s generated-token count each time it grows, until it is finished."""
        while True:
            await seq.progress.wait()
            seq.progress.clear()
            yield seq.generated
            if seq.state == "finished":
                return

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while (step := self.scheduler.plan()) is not None:
            # Sleep to the step's modelled end counted from the busy period's start, so late
            # wake-ups on a loaded machine are caught up rather than added to every step.
            due += step.seconds
            await asyncio.sleep(due - loop.time())
            for seq in self.scheduler.complete(step):
                seq.progress.set()
