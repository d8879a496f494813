"""``vlgw dev``: the README's first command. The gateway, a demo key, and the emulator if needed.

If nothing answers vLLM's ``/health`` at the first ``GATEWAY_UPSTREAM_URLS`` entry, the bundled
vLLM emulator is started on loopback and this is said loudly: its answers describe the request,
they are not a model's.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time

import httpx

from gateway.settings import load_settings

BANNER = "=" * 78


def _vllm_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _start_emulator(port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "gateway", "emulator", "--host", "127.0.0.1", "--port", str(port)]
    )
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 20
    while not _vllm_answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the emulator did not start on port {port}")
        time.sleep(0.1)
    return url


def _demo_key() -> str | None:
    settings = load_settings()
    if settings.auth_disabled:
        return None
    from gateway.auth.cli import rotate_demo_key

    return rotate_demo_key(settings)


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
            f"No vLLM answered at {settings.upstream_urls[0]}: started the bundled vLLM EMULATOR at {upstream}.",
            "Its answers only describe your request (image size, colour, prompt length); it is NOT a model.",
            "Point GATEWAY_UPSTREAM_URLS at a real `vllm serve` for real answers.",
        ]
    os.environ["GATEWAY_PORT"] = str(port)
    os.environ.setdefault("GATEWAY_HOST", "127.0.0.1")
    os.environ.setdefault("GATEWAY_IMAGE_ALLOW_PRIVATE_URLS", "false")
    key = _demo_key()
    base = f"http://127.0.0.1:{port}"
    auth = f'-H "Authorization: Bearer {key}" ' if key else ""
    lines += [
        f"gateway: {base}   (API reference: {base}/docs, metrics: {base}/metrics)",
        f"demo key (shown once, stored hashed; a new one each `vlgw dev`): {key}"
        if key
        else "auth is disabled (GATEWAY_AUTH_DISABLED=true)",
        "try:",
        f"  curl -s {base}/v1/qwen-vl {auth}-H 'Content-Type: application/json' \\",
        '    -d \'{"image": "https://example.com/test.jpg", "prompt": "请描述这张图片的内容"}\'',
    ]
    print("\n".join([BANNER, *lines, BANNER]), flush=True)
    from gateway.server import serve

    serve(load_settings())
    return 0
