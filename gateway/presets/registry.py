"""The live set of presets: loaded at start, re-read when the file changes, never left broken.

The file's ``(mtime_ns, size)`` is polled every ``presets_reload_seconds`` (a stat call, no
read). A changed file is parsed and validated as a whole; only a valid file replaces the
presets in use. A broken edit logs ``presets_reload_failed`` with the reason and the old
presets keep serving, so an operator's typo never takes the app feature down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog

from gateway import errors
from gateway.presets.loader import BUNDLED_PRESETS, PresetFileError, load_presets
from gateway.presets.model import Preset
from gateway.settings import Settings

log = structlog.get_logger("gateway.presets")

_Stamp = tuple[int, int]


class PresetRegistry:
    """Presets by name, hot-reloaded from ``settings.presets_file`` (or the bundled file)."""

    def __init__(self, settings: Settings, *, path: Path | None = None) -> None:
        self.path = path or settings.presets_file or BUNDLED_PRESETS
        self.interval = settings.presets_reload_seconds
        self.last_error: str | None = None
        self.loaded_at = 0.0
        self._stamp: _Stamp | None = None
        self._checked = 0.0
        self._presets: dict[str, Preset] = {}
        self._task: asyncio.Task[None] | None = None
        self._load()  # a broken file at start-up is fatal: PresetFileError names the problem

    def _file_stamp(self) -> _Stamp | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _load(self) -> None:
        stamp = self._file_stamp()
        presets = load_presets(self.path)
        self._presets, self._stamp, self.loaded_at = presets, stamp, time.time()
        self.last_error = None

    def maybe_reload(self) -> bool:
        """Re-read the file if it changed since the last look; True when new presets are in use."""
        self._checked = time.monotonic()
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        try:
            self._load()
        except PresetFileError as exc:
            self._stamp = stamp  # do not re-parse (and re-log) the same broken file every poll
            self.last_error = str(exc)
            log.error(
                "presets_reload_failed", path=str(self.path), error=str(exc), kept=sorted(self._presets)
            )
            return False
        log.info("presets_reloaded", path=str(self.path), presets=sorted(self._presets))
        return True

    async def start(self) -> None:
        """Start polling the file in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="presets-reload")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            # A stat is microseconds; off the loop anyway, the file may sit on a slow volume.
            changed = await asyncio.to_thread(self._file_stamp)
            if changed != self._stamp:
                self.maybe_reload()

    def get(self, name: str) -> Preset:
        """The preset called ``name``; 40008 listing the known names otherwise."""
        preset = self._presets.get(name)
        if preset is None:
            known = ", ".join(sorted(self._presets))
            raise errors.UnknownPreset(f"unknown preset {name!r}; known presets: {known}", param="preset")
        return preset

    def all(self) -> list[Preset]:
        """Every preset, by name."""
        return [self._presets[name] for name in sorted(self._presets)]

    def names(self) -> list[str]:
        return sorted(self._presets)
