"""Emulator-only routes under ``/emulator/``: stats, the request log, faults at runtime, reset."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.emulator.errors import bad_request
from gateway.emulator.http import Exchange
from gateway.emulator.state import EmulatorState


async def stats(ex: Exchange, state: EmulatorState) -> None:
    """``GET /emulator/stats``: the counters."""
    await ex.json(state.stats())


async def requests(ex: Exchange, state: EmulatorState) -> None:
    """``GET /emulator/requests?limit=N``: the last N chat requests received, oldest first."""
    try:
        limit = int(ex.query.get("limit", "20"))
    except ValueError:
        raise bad_request("limit must be an integer", "limit") from None
    entries = list(state.requests)[-limit:] if limit > 0 else []
    await ex.json({"object": "list", "data": entries})


async def get_faults(ex: Exchange, state: EmulatorState) -> None:
    """``GET /emulator/faults``: the faults now in force."""
    await ex.json(state.faults)


async def set_faults(ex: Exchange, state: EmulatorState) -> None:
    """``POST /emulator/faults``: apply a partial JSON object of fault knobs; answer the result."""
    try:
        partial: Any = msgspec.json.decode(ex.body or b"{}")
    except msgspec.DecodeError as exc:
        raise bad_request(f"JSON decode error: {exc}") from None
    if not isinstance(partial, dict):
        raise bad_request("expected a JSON object of fault knobs")
    try:
        state.faults = state.faults.updated(partial)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    await ex.json(state.faults)


async def reset(ex: Exchange, state: EmulatorState) -> None:
    """``POST /emulator/reset``: zero the counters, restore the configured faults."""
    state.reset()
    await ex.json(state.stats())
