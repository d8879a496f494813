"""Steady load on real gateway processes from a few threads, recording every answer with its time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.integration.test_limits import BODY


@dataclass
class Answer:
    sent: float  # time.monotonic() when sent
    done: float
    status: int
    code: int | None


@dataclass
class Load:
    """``threads`` clients posting to the gateways in turn until :meth:`stop`."""

    urls: list[str]
    key: str
    threads: int = 4
    pause: float = 0.02  # seconds between one thread's requests: far above any limit, and gentle on CI
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _run(self, n: int) -> None:
        headers = {"authorization": f"Bearer {self.key}"}
        with httpx.Client(headers=headers, timeout=30) as client:
            i = n
            while not self._stop.wait(self.pause):
                url = self.urls[i % len(self.urls)]
                i += 1
                sent = time.monotonic()
                try:
                    response = client.post(f"{url}/v1/qwen-vl", json=BODY)
                except httpx.HTTPError:
                    self.answers.append(Answer(sent, time.monotonic(), 0, None))
                    continue
                code = response.json().get("code") if response.status_code != 200 else None
                self.answers.append(Answer(sent, time.monotonic(), response.status_code, code))

    def stop(self) -> list[Answer]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
        return self.answers

    def statuses(self, since: float = 0.0) -> Counter[int]:
        return Counter(a.status for a in self.answers if a.sent >= since)

    def admitted(self, since: float = 0.0) -> int:
        return sum(1 for a in self.answers if a.sent >= since and a.status == 200)


WINDOW = 60.0  # seconds: key limits are per minute


def assert_limit_held_through_outage(load: Load, limit: int, started: float, killed: float) -> str:
    """After a Redis node was killed mid-run: no 5xx, and the key's admissions within GCRA's truth.

    The key was fresh at ``started`` (GCRA admits a burst of ``limit``, then ``limit`` per window)
    and spent its burst before ``killed``, so from the kill on the truth is its rate. The whole run
    may exceed its truth by 10 % (plus one request at the window's edge); the time since the kill
    by 10 % of the limit: what a minute's count could be over, the state replication lost in a
    switch-over included. Returns a summary line.
    """
    answers = load.answers
    statuses = load.statuses()
    assert not [a for a in answers if a.status >= 500 or a.status == 0], statuses
    assert set(statuses) == {200, 429}, statuses
    assert {a.code for a in answers if a.status == 429} == {42901}
    ended = max(a.done for a in answers)
    admitted, bound = load.admitted(), limit + limit * (ended - started) / WINDOW + 1
    assert admitted <= bound * 1.10, (admitted, bound, statuses)
    after_kill, rate_truth = load.admitted(since=killed), limit * (ended - killed) / WINDOW
    assert 0 < after_kill <= rate_truth + 0.10 * limit, (after_kill, rate_truth)
    return (
        f"admitted {admitted} (bound {bound:.0f}), {after_kill} after the kill "
        f"(truth {rate_truth:.1f}); {statuses}"
    )


def assert_cache_shared_after_failover(urls: list[str], key: str, node_has: Callable[[str], bool]) -> None:
    """A new question is answered once, stored in the (new) primary, and a HIT from every process."""
    headers = {"authorization": f"Bearer {key}"}
    body = {**BODY, "prompt": f"after the failover {time.time()}", "temperature": 0}
    first = httpx.post(f"{urls[0]}/v1/qwen-vl", json=body, headers=headers, timeout=30)
    assert (first.status_code, first.headers.get("x-cache")) == (200, "MISS"), first.text
    for url in urls:
        again = httpx.post(f"{url}/v1/qwen-vl", json=body, headers=headers, timeout=30)
        assert (again.status_code, again.headers.get("x-cache")) == (200, "HIT"), again.text
        assert again.json()["text"] == first.json()["text"]
    assert node_has("vlgw:cache:*")
