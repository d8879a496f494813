"""What the app-developer features store: request records, feedback, per-day usage."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Literal

import msgspec

REQUEST_TTL_SECONDS = 7 * 86_400  # feedback can name a request this long after it was answered
USAGE_TTL_DAYS = 400  # per-day usage rows kept this long
COMMENT_MAX = 2000
EXPECTED_MAX = 4000
ANSWER_MAX = 16_000  # characters of the answer kept with a request record
PROMPT_MAX = 16_000

Verdict = Literal["good", "bad"]


class RequestRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One answered request, kept ``REQUEST_TTL_SECONDS`` so feedback can refer to it."""

    request_id: str
    key_name: str
    route: str
    prompt: str | None
    answer: str
    model: str
    image_sha256: list[str] = msgspec.field(default_factory=list)
    preset: str | None = None
    preset_version: str | None = None
    created: float = 0.0  # unix seconds; set by the recorder when 0
    images_b64: list[str] | None = None  # only with GATEWAY_FEEDBACK_STORE_IMAGES=true

    def clipped(self) -> RequestRecord:
        """This record with the prompt and answer cut to their stored maximum."""
        return msgspec.structs.replace(
            self,
            prompt=None if self.prompt is None else self.prompt[:PROMPT_MAX],
            answer=self.answer[:ANSWER_MAX],
        )


class FeedbackBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of ``POST /v1/feedback``: an app's "识别有误?" / "wrong answer?" button."""

    request_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    verdict: Verdict
    comment: Annotated[str, msgspec.Meta(max_length=COMMENT_MAX)] | None = None
    expected: Annotated[str, msgspec.Meta(max_length=EXPECTED_MAX)] | None = None


class FeedbackEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One stored piece of feedback with the request it judges (one line of the export)."""

    id: str
    created: float
    key_name: str
    request_id: str
    verdict: Verdict
    comment: str | None = None
    expected: str | None = None
    request: RequestRecord | None = None

    def export_line(self) -> bytes:
        """One JSONL line: the entry with an ISO ``created_at`` added, for review and fine-tuning."""
        data = msgspec.to_builtins(self)
        data["created_at"] = iso(self.created)
        return msgspec.json.encode(data) + b"\n"


class UsageDay(msgspec.Struct):
    """One key's counters for one UTC day (``GET /v1/usage``)."""

    date: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    errors: dict[str, int] = msgspec.field(default_factory=dict)


class UsageReport(msgspec.Struct):
    key: str
    days: list[UsageDay]
    code: int = 0


COUNTERS = ("requests", "prompt_tokens", "completion_tokens", "cache_hits")
ERROR_PREFIX = "err:"  # stored field "err:40001" -> errors {"40001": n}


def usage_day(date: str, fields: dict[str, int]) -> UsageDay:
    """A UsageDay from stored fields (``requests``, ..., ``err:<code>``)."""
    errors = {name[len(ERROR_PREFIX) :]: n for name, n in fields.items() if name.startswith(ERROR_PREFIX)}
    counters = {name: fields.get(name, 0) for name in COUNTERS}
    return UsageDay(date=date, errors=dict(sorted(errors.items())), **counters)


def utc_day(timestamp: float) -> str:
    """``YYYY-MM-DD`` of a Unix time, in UTC (called for every request: memoised per day)."""
    return _day_name(int(timestamp // 86_400))


@functools.lru_cache(maxsize=8)
def _day_name(day: int) -> str:
    return dt.datetime.fromtimestamp(day * 86_400, dt.UTC).strftime("%Y-%m-%d")


def last_days(today: float, days: int) -> list[str]:
    """The ``days`` UTC dates ending today, oldest first."""
    day = dt.datetime.fromtimestamp(today, dt.UTC).date()
    return [(day - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def iso(timestamp: float) -> str:
    return (
        dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
