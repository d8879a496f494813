"""``vlgw dev``: the README's first command. The gateway, a demo key, and the emulator if needed.

If nothing answers vLLM's ``/health`` at the first ``GATEWAY_UPSTREAM_URLS`` entry, the bundled
vLLM emulator is started on loopback and this is said loudly: its answers describe the request,
they are not a model's.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.auth import build_key_manager
from gateway.ops.stores import open_stores
from gateway.settings import Settings, load_settings

BANNER = "=" * 78
DEMO_KEY_NAME = "demo"
SAMPLE_PHOTO = Path(__file__).resolve().parents[2] / "examples" / "coffee.jpg"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the emulator's process: get SIGTERM when ``vlgw dev`` ends, however it ends.

    uvicorn re-raises SIGTERM after its graceful shutdown, which ends the process without
    running ``atexit``; the kernel's parent-death signal (Linux) covers that and SIGKILL too.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux: atexit below is the fallback
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _vllm_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _start_emulator(port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "gateway", "emulator", "--host", "127.0.0.1", "--port", str(port)],
        preexec_fn=_die_with_parent,
    )
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 20
    while not _vllm_answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the emulator did not start on port {port}")
        time.sleep(0.1)
    return url


async def _rotate_demo_key(settings: Settings) -> str:
    """Revoke the previous ``demo`` key (if any) and create a new one; its secret is shown once."""
    async with open_stores(settings, operator=True) as stores:
        manager = build_key_manager(settings, stores.redis, stores.db)
        try:
            await manager.revoke(DEMO_KEY_NAME)
            key, _ = await manager.create(DEMO_KEY_NAME)
            return key
        finally:
            await manager.aclose()


def _demo_key() -> str | None:
    settings = load_settings()
    if settings.auth_disabled:
        return None
    return asyncio.run(_rotate_demo_key(settings))


def first_call(base: str, key: str | None, photo: Path = SAMPLE_PHOTO) -> list[str]:
    """The README's first call with the bundled sample photo, as shell lines."""
    auth = f'-H "Authorization: Bearer {key}" ' if key else ""
    head = '{"prompt": "请描述这张图片的内容", "image": "'
    return [
        f"  (printf '%s' '{head}'; base64 -w0 {photo}; printf '\"}}') \\",
        f"    | curl -s {base}/v1/qwen-vl {auth}-H 'Content-Type: application/json' --data-binary @-",
    ]


def run_dev(*, port: int, emulator_port: int) -> int:
    """Serve on ``port``; print how to call it."""
    settings = load_settings()
    upstream = settings.upstream_urls[0]
    lines = []
    if _vllm_answers(upstream):
        lines.append(f"upstream: vLLM answers at {upstream}")
    else:
        upstream = _start_emulator(emulator_port)
        os.environ["GATEWAY_UPSTREAM_URLS"] = upstream
        lines += [
            f"No vLLM answered at {settings.upstream_urls[0]}:",
            f"started the bundled vLLM EMULATOR at {upstream}.",
            "Its answers only describe your request (image size, colour, prompt length); it is NOT a model.",
            "Point GATEWAY_UPSTREAM_URLS at a real `vllm serve` for real answers.",
        ]
    os.environ["GATEWAY_PORT"] = str(port)
    os.environ.setdefault("GATEWAY_HOST", "127.0.0.1")
    os.environ.setdefault("GATEWAY_IMAGE_ALLOW_PRIVATE_URLS", "false")
    key = _demo_key()
    base = f"http://127.0.0.1:{port}"
    lines += [
        f"gateway: {base}   (API reference: {base}/docs, metrics: {base}/metrics)",
        f"demo key (shown once, stored hashed; a new one each `vlgw dev`): {key}"
        if key
        else "auth is disabled (GATEWAY_AUTH_DISABLED=true)",
        "try (any photo size: the JSON is piped in, not put on the command line):",
        *first_call(base, key),
        "operator commands: `uv run vlgw keys create --name myapp` (or activate .venv: `vlgw ...`)",
    ]
    print("\n".join([BANNER, *lines, BANNER]), flush=True)
    from gateway.ops.server import serve

    serve(load_settings())
    return 0
