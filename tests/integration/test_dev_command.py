"""``vlgw dev`` as a new user runs it: the banner's first call works as printed (with the bundled
sample photo, offline), and SIGTERM stops the emulator it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

pytestmark = pytest.mark.slow


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def test_banner_call_works_as_printed_and_sigterm_stops_the_emulator(tmp_path: Path) -> None:
    port, emulator_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_UPSTREAM_URLS": f"http://127.0.0.1:{emulator_port}",
        "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "0",
    }
    dev = subprocess.Popen(
        [sys.executable, "-m", "gateway", "dev", "--port", str(port), "--emulator-port", str(emulator_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        banner: list[str] = []
        assert dev.stdout is not None
        for line in dev.stdout:  # the emulator's own log lines come first: skip to the banner
            if banner or line.startswith("=" * 20):
                banner.append(line.rstrip("\n"))
            if len(banner) > 1 and line.startswith("=" * 20):
                break
        text = "\n".join(banner)
        assert "EMULATOR" in text and "NOT a model" in text, text
        start = next(i for i, line in enumerate(banner) if line.startswith("try"))
        command = "\n".join(banner[start + 1 : start + 3])
        assert "coffee.jpg" in command and "--data-binary @-" in command
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/readyz"), 30)
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        answer = json.loads(done.stdout)
        assert answer["code"] == 0 and "600x400" in answer["text"], answer  # the emulator saw the photo
        assert answers(f"http://127.0.0.1:{emulator_port}/health")
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=30)
        wait_for(lambda: not answers(f"http://127.0.0.1:{emulator_port}/health"), 10)
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
        if dev.stdout is not None:
            dev.stdout.close()


def test_readme_first_call_and_url_call_work_as_printed(
    make_gateway, emulator, image_origin, tmp_path
) -> None:
    """The README's two calls, run by bash exactly as written there (key and addresses substituted)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.DOTALL)
    first = next(b for b in blocks if "examples/coffee.jpg" in b and "--data-binary @-" in b)
    server, files = image_origin
    files.files["/coffee.jpg"] = (
        (Path(__file__).resolve().parents[2] / "examples" / "coffee.jpg").read_bytes(),
        "image/jpeg",
    )
    gw = make_gateway(
        [emulator.url], image_url_allowlist=[f"127.0.0.1:{server.port}"], image_allow_private_urls=False
    )
    command = first.replace("http://127.0.0.1:8080", gw.url).replace("export VLGW_KEY=vlgw_...", "")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, cwd=repo,
                          env={"PATH": os.environ["PATH"], "VLGW_KEY": "unused-auth-disabled"})  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["code"] == 0 and "600x400" in answer["text"], done.stdout + done.stderr
    url_call = next(b for b in blocks if "http://127.0.0.1:9000/coffee.jpg" in b)
    curl = url_call[url_call.index("curl -s") :]
    curl = curl.replace("http://127.0.0.1:8080", gw.url).replace("127.0.0.1:9000", f"127.0.0.1:{server.port}")
    done = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], "VLGW_KEY": "x"})  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["code"] == 0 and "600x400" in answer["text"], done.stdout + done.stderr
