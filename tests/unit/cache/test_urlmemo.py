"""The URL → content-hash memo honours the origin's caching headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.cache import UrlHashMemo, freshness_seconds

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, 0),
        ({"Cache-Control": "max-age=300"}, 300),
        ({"cache-control": "public, max-age=300, s-maxage=60"}, 60),
        ({"Cache-Control": "max-age=300", "Age": "100"}, 200),
        ({"Cache-Control": "max-age=300", "Age": "400"}, 0),
        ({"Cache-Control": "no-store, max-age=300"}, 0),
        ({"Cache-Control": "no-cache, max-age=300"}, 0),
        ({"Cache-Control": "private, max-age=300"}, 0),
        ({"Cache-Control": "max-age=soon"}, 0),
        ({"Expires": http_date(NOW + timedelta(minutes=10)), "Date": http_date(NOW)}, 600),
        ({"Expires": "0", "Date": http_date(NOW)}, 0),
        ({"Expires": http_date(NOW + timedelta(hours=1)), "Cache-Control": "max-age=5"}, 5),
    ],
)
def test_freshness(headers: dict[str, str], seconds: float) -> None:
    assert freshness_seconds(headers) == seconds


def test_memo_remembers_while_fresh_only() -> None:
    now = [0.0]
    memo = UrlHashMemo(clock=lambda: now[0])
    assert memo.put("https://img/a.jpg", "h-a", {"Cache-Control": "max-age=60"})
    assert not memo.put("https://img/b.jpg", "h-b", {"Cache-Control": "no-store"})
    assert memo.get("https://img/a.jpg") == "h-a"
    assert memo.get("https://img/b.jpg") is None
    now[0] = 61
    assert memo.get("https://img/a.jpg") is None


def test_memo_forgets_when_the_origin_now_says_no_store() -> None:
    memo = UrlHashMemo()
    memo.put("u", "h1", {"Cache-Control": "max-age=60"})
    memo.put("u", "h2", {"Cache-Control": "no-store"})
    assert memo.get("u") is None


def test_memo_is_a_bounded_lru_with_capped_lifetime() -> None:
    now = [0.0]
    memo = UrlHashMemo(max_entries=2, max_age=10, clock=lambda: now[0])
    fresh = {"Cache-Control": "max-age=86400"}
    memo.put("a", "1", fresh)
    memo.put("b", "2", fresh)
    memo.get("a")
    memo.put("c", "3", fresh)
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == ("1", None, "3")
    now[0] = 11
    assert memo.get("a") is None  # capped at max_age despite the day the origin allowed
