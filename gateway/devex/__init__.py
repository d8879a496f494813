"""App-developer features: request log, feedback, usage, and the DevEx container.

Documented in docs/feedback-and-usage.md.

model.py         RequestRecord, FeedbackBody/Entry, UsageDay/Report (msgspec)
store.py         DevexStore protocol; redis_store.py and sqlite_store.py implement it
recorder.py      hot path: request records and usage counters written in the background
service.py       DevEx (what routes use) and open_devex(settings, redis, db)
"""

from gateway.devex.model import FeedbackBody, FeedbackEntry, RequestRecord, UsageDay, UsageReport
from gateway.devex.recorder import Recorder
from gateway.devex.redis_store import RedisDevexStore
from gateway.devex.service import DevEx, build_store, open_devex
from gateway.devex.sqlite_store import SqliteDevexStore
from gateway.devex.store import DevexStore

__all__ = [
    "DevEx",
    "DevexStore",
    "FeedbackBody",
    "FeedbackEntry",
    "Recorder",
    "RedisDevexStore",
    "RequestRecord",
    "SqliteDevexStore",
    "UsageDay",
    "UsageReport",
    "build_store",
    "open_devex",
]
