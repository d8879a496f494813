"""The devex store contract, the same on embedded SQLite and Redis."""

from __future__ import annotations

import time

from gateway.devex import DevexStore, FeedbackEntry, RequestRecord


def record(request_id: str = "r1", key_name: str = "app-a", **fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "key_name": key_name,
        "route": "/v1/qwen-vl",
        "prompt": "这是什么?",
        "answer": "绿萝。一种常见的室内观叶植物。",
        "model": "qwen3-vl",
        "image_sha256": ["ab" * 32],
        "preset": "identify_object",
        "preset_version": "1",
        "created": time.time(),
    }
    values.update(fields)
    return RequestRecord(**values)  # type: ignore[arg-type]


def entry(created: float, request_id: str = "r1", verdict: str = "bad") -> FeedbackEntry:
    return FeedbackEntry(
        id="", created=created, key_name="app-a", request_id=request_id, verdict=verdict,  # type: ignore[arg-type]
        comment="不是绿萝", expected="吊兰", request=record(request_id),
    )  # fmt: skip


async def test_request_records_round_trip_per_key(store: DevexStore) -> None:
    stored = record()
    await store.put_request(stored, ttl=60)
    assert await store.get_request("app-a", "r1") == stored
    assert await store.get_request("app-b", "r1") is None  # another key does not see it
    assert await store.get_request("app-a", "r2") is None


async def test_the_same_request_id_from_two_keys_does_not_collide(store: DevexStore) -> None:
    await store.put_request(record(answer="a's answer"), ttl=60)
    await store.put_request(record(key_name="app-b", answer="b's answer"), ttl=60)
    a = await store.get_request("app-a", "r1")
    b = await store.get_request("app-b", "r1")
    assert a is not None and a.answer == "a's answer"
    assert b is not None and b.answer == "b's answer"


async def test_expired_request_records_are_gone(store: DevexStore) -> None:
    await store.put_request(record(), ttl=1)
    assert await store.get_request("app-a", "r1") is not None
    time.sleep(1.2)
    assert await store.get_request("app-a", "r1") is None


async def test_feedback_is_exported_by_time_window_oldest_first(store: DevexStore) -> None:
    now = time.time()
    ids = [await store.add_feedback(entry(now, f"r{n}")) for n in range(3)]
    assert len(set(ids)) == 3
    got = [e async for e in store.feedback_between(now - 60, now + 60)]
    assert [e.request_id for e in got] == ["r0", "r1", "r2"]
    assert [e.id for e in got] == ids
    assert got[0].request is not None and got[0].request.answer.startswith("绿萝")
    assert got[0].expected == "吊兰" and got[0].verdict == "bad"
    assert [e async for e in store.feedback_between(now + 60, now + 120)] == []


async def test_export_pages_through_many_entries(store: DevexStore) -> None:
    now = time.time()
    for n in range(1100):
        await store.add_feedback(entry(now, f"r{n}", "good"))
    got = [e.request_id async for e in store.feedback_between(now - 60, now + 60)]
    assert len(got) == 1100 and got[0] == "r0" and got[-1] == "r1099"


async def test_usage_adds_up_per_key_and_day(store: DevexStore) -> None:
    await store.add_usage({("app-a", "2026-11-24"): {"requests": 2, "prompt_tokens": 10, "err:40001": 1}})
    await store.add_usage(
        {
            ("app-a", "2026-11-24"): {"requests": 1, "prompt_tokens": 5, "cache_hits": 1},
            ("app-a", "2026-11-25"): {"requests": 1},
            ("app-b", "2026-11-24"): {"requests": 7},
        }
    )
    got = await store.get_usage("app-a", ["2026-11-23", "2026-11-24", "2026-11-25"])
    assert got == {
        "2026-11-24": {"requests": 3, "prompt_tokens": 15, "cache_hits": 1, "err:40001": 1},
        "2026-11-25": {"requests": 1},
    }
    assert await store.get_usage("app-b", ["2026-11-24"]) == {"2026-11-24": {"requests": 7}}
