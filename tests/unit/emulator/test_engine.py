"""Continuous batching in the cost model, driven step by step on a fake clock (no sleeping, no timing)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gateway.emulator.cost import DecodeCost, prefill_ms
from gateway.emulator.engine import EngineLimits, Scheduler, Sequence

PHOTO = 11_844  # visual tokens of a 4032x3024 photo at the model's default max_pixels (UPSTREAM.md)
BUDGETED = 1_230  # the same photo under the gateway's 1,310,720-pixel budget
TEXT = 40


def limits(**overrides: object) -> EngineLimits:
    values: dict[str, object] = {
        "max_num_seqs": 64,
        "kv_tokens": 680_000,
        "max_num_batched_tokens": 8192,
        "decode": DecodeCost(5.0, 0.044),
        "prefix_cache": True,
    }
    return EngineLimits(**(values | overrides))  # type: ignore[arg-type]


def request(visual: int | None = None, sha: str = "a", answer: int = 10) -> Sequence:
    images = [] if visual is None else [(sha, visual)]
    prompt = TEXT + (visual or 0)
    return Sequence(images=images, text_tokens=TEXT, prompt_tokens=prompt, output_tokens=answer)


@dataclass
class Clock:
    """Runs a scheduler to idle on modelled time, noting when each request got its first and last token."""

    scheduler: Scheduler
    now: float = 0.0
    first: dict[int, float] = field(default_factory=dict)
    done: dict[int, float] = field(default_factory=dict)

    def step(self) -> bool:
        step = self.scheduler.plan()
        if step is None:
            return False
        self.now += step.seconds
        for seq in self.scheduler.complete(step):
            self.first.setdefault(id(seq), self.now)
            if seq.state == "finished":
                self.done[id(seq)] = self.now
        return True

    def run(self) -> None:
        while self.step():
            pass


def test_one_request_takes_its_prefill_then_one_decode_step_per_further_token() -> None:
    scheduler = Scheduler(limits())
    clock = Clock(scheduler)
    seq = request(PHOTO, answer=10)
    scheduler.add(seq)
    clock.run()
    prefill = prefill_ms([PHOTO], TEXT) / 1000
    assert clock.first[id(seq)] == pytest.approx(prefill)
    decode = sum(DecodeCost(5.0, 0.044).step_ms(seq.prompt_tokens + n) for n in range(1, 10)) / 1000
    assert clock.done[id(seq)] == pytest.approx(prefill + decode)
    assert scheduler.gpu_seconds == pytest.approx(clock.now)
    assert (scheduler.prefill_seconds, scheduler.kv_used, seq.state) == (
        pytest.approx(prefill),
        0,
        "finished",
    )


def test_a_batch_shares_decode_steps_so_two_together_cost_less_gpu_time_than_two_apart() -> None:
    together = Scheduler(limits())
    together.add(request(BUDGETED, "a", answer=50))
    together.add(request(BUDGETED, "b", answer=50))
    Clock(together).run()
    apart = Scheduler(limits())
    for sha in "ab":
        apart.add(request(BUDGETED, sha, answer=50))
        Clock(apart).run()
    assert together.prefill_seconds == pytest.approx(apart.prefill_seconds)
    assert together.decode_seconds < 0.6 * apart.decode_seconds


def test_requests_beyond_max_num_seqs_wait_until_a_running_one_finishes() -> None:
    scheduler = Scheduler(limits(max_num_seqs=2))
    clock = Clock(scheduler)
    first, second, third = request(answer=5), request(answer=20), request(answer=5)
    for seq in (first, second, third):
        scheduler.add(seq)
    clock.step()
    assert (len(scheduler.running), len(scheduler.waiting)) == (2, 1)
    clock.run()
    assert clock.first[id(third)] > clock.done[id(first)]
    assert clock.first[id(third)] < clock.done[id(second)]


def test_a_big_image_at_the_head_of_the_queue_holds_back_small_requests_until_kv_frees_up() -> None:
    # KV for one unbudgeted photo and a bit: a second photo cannot start beside the first,
    # and (first come, first served) neither can the small request queued behind it.
    scheduler = Scheduler(limits(kv_tokens=20_000))
    clock = Clock(scheduler)
    photo, photo2, small = request(PHOTO, "p1"), request(PHOTO, "p2"), request(BUDGETED, "s")
    for seq in (photo, photo2, small):
        scheduler.add(seq)
    clock.step()
    assert [seq.state for seq in (photo, photo2, small)] == ["running", "waiting", "waiting"]
    assert scheduler.kv_usage == pytest.approx(photo.kv_tokens / 20_000)
    clock.run()
    assert clock.first[id(photo2)] > clock.done[id(photo)]
    assert clock.first[id(small)] > clock.done[id(photo)]


def test_a_small_request_behind_a_big_prefill_waits_for_it() -> None:
    alone = Scheduler(limits())
    clock = Clock(alone)
    small = request(BUDGETED, "s")
    alone.add(small)
    clock.run()
    ttft_alone = clock.first[id(small)]

    crowded = Scheduler(limits())
    clock = Clock(crowded)
    small = request(BUDGETED, "s")
    crowded.add(request(PHOTO, "p"))  # 11,884 prompt tokens: over the 8,192-token step budget alone
    crowded.add(small)
    clock.run()
    assert clock.first[id(small)] == pytest.approx(
        prefill_ms([PHOTO], TEXT) / 1000 + ttft_alone + 0.005, rel=0.01
    )
    assert clock.first[id(small)] > 10 * ttft_alone


def test_prefills_share_a_step_up_to_the_token_budget() -> None:
    scheduler = Scheduler(limits(max_num_batched_tokens=3000))
    for sha in "abc":
        scheduler.add(request(BUDGETED, sha))
    step = scheduler.plan()
    assert step is not None and len(step.prefills) == 2  # 2 x 1,270 prompt tokens fit 3,000; a third does not


def test_a_repeated_image_reuses_its_kv_with_prefix_caching_and_pays_again_without() -> None:
    cached = Scheduler(limits())
    clock = Clock(cached)
    cached.add(request(PHOTO, "same"))
    clock.run()
    cached.add(request(PHOTO, "same"))
    clock.run()
    assert cached.prefill_seconds == pytest.approx((prefill_ms([PHOTO], TEXT) + prefill_ms([], TEXT)) / 1000)
    assert (cached.cache.queries, cached.cache.hits, cached.visual_tokens) == (2, 1, PHOTO)

    uncached = Scheduler(limits(prefix_cache=False))
    clock = Clock(uncached)
    for _ in range(2):
        uncached.add(request(PHOTO, "same"))
        clock.run()
    assert uncached.prefill_seconds == pytest.approx(2 * prefill_ms([PHOTO], TEXT) / 1000)


def test_identical_requests_prefilled_in_the_same_step_both_pay() -> None:
    scheduler = Scheduler(limits(max_num_batched_tokens=4000))
    scheduler.add(request(BUDGETED, "same"))
    scheduler.add(request(BUDGETED, "same"))
    Clock(scheduler).run()
    assert scheduler.prefill_seconds == pytest.approx(2 * prefill_ms([BUDGETED], TEXT) / 1000)


def test_the_prefix_cache_holds_at_most_the_kv_budget() -> None:
    scheduler = Scheduler(limits(kv_tokens=20_000))
    clock = Clock(scheduler)
    for sha in ("p1", "p2", "p1"):  # p2 evicts p1: two photos are more than 20,000 tokens
        scheduler.add(request(PHOTO, sha))
        clock.run()
    assert scheduler.cache.hits == 0


def test_aborting_frees_the_slot_and_kv_and_the_next_request_starts() -> None:
    scheduler = Scheduler(limits(max_num_seqs=1))
    clock = Clock(scheduler)
    running, queued = request(answer=100), request(answer=3)
    scheduler.add(running)
    scheduler.add(queued)
    clock.step()
    scheduler.abort(running)
    assert (running.state, scheduler.kv_used) == ("aborted", 0)
    clock.run()
    assert queued.state == "finished" and id(running) not in clock.done


def test_a_request_aborted_mid_step_gets_no_token_but_the_gpu_time_is_spent() -> None:
    scheduler = Scheduler(limits())
    seq = request(PHOTO)
    scheduler.add(seq)
    step = scheduler.plan()
    assert step is not None
    scheduler.abort(seq)
    assert scheduler.complete(step) == [] and seq.generated == 0
    assert scheduler.prefill_seconds == pytest.approx(step.prefill_s)
