"""Shared by the benchmarks: an emulator and a gateway as real processes on loopback."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port  # noqa: E402


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(url)


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3, ``state``, is index 0)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (utime + stime) of a process and every live descendant, plus the reaped children's
    (cutime + cstime), in seconds, from /proc: with GATEWAY_WORKERS > 1 the work is in the workers."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(current)
            total += sum(int(value) for value in fields[11:15])
            stack.extend(_children(current))
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Stack:
    emulator_url: str
    gateway_url: str
    key: str
    gateway_pid: int
    emulator_pid: int
    tmp: Path


@contextlib.contextmanager
def stack(gateway_env: dict[str, str] | None = None, emulator_args: tuple[str, ...] = ()) -> Iterator[Stack]:
    """Start ``vlgw emulator`` and ``vlgw serve`` (auth on, a fresh key); stop both afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="vlgw-bench-"))
    emu_port, gw_port = free_port(), free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "emulator",
            "--port",
            str(emu_port),
            "--request-log-size",
            "0",
            *emulator_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean,
    )
    env = {
        **clean,
        "GATEWAY_UPSTREAM_URLS": f"http://127.0.0.1:{emu_port}",
        "GATEWAY_DATA_DIR": str(tmp),
        "GATEWAY_PORT": str(gw_port),
        "GATEWAY_HOST": "127.0.0.1",
        **(gateway_env or {}),
    }
    key = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "create", "--name", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(tmp / "gateway.log", "w") as log:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"], env=env, stdout=log, stderr=log
        )
    try:
        wait_http(f"http://127.0.0.1:{emu_port}/health")
        wait_http(f"http://127.0.0.1:{gw_port}/readyz")
        yield Stack(
            f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{gw_port}", key, gateway.pid, emulator.pid, tmp
        )
    finally:
        gateway.terminate()
        emulator.terminate()
        gateway.wait(timeout=30)
        emulator.wait(timeout=30)
