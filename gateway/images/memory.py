"""Process memory and CPU facts from /proc, and handing freed heap back to the system (glibc).

Linux-only facts with harmless fallbacks elsewhere: ``rss_bytes`` answers 0, ``cpu_seconds``
answers None (callers then fall back to wall time), ``trim`` does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Callable

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return function


_MALLOC_TRIM = _load_malloc_trim()


def trim() -> None:
    """Return free heap pages to the system (glibc ``malloc_trim(0)``; a no-op elsewhere).

    glibc keeps freed memory in its arenas; after a 200 MB decode the process would keep those
    pages for good. Costs about a millisecond on a large heap, so callers use it after big work only.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, in bytes (0 when unknown)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm", "rb") as handle:
        return int(handle.read().split()[1]) * _PAGE
    return 0


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time a process has used, in seconds; None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (IndexError, ValueError):
        return None
