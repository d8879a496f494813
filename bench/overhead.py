"""Gateway overhead: the same ~200 KB photo straight at the emulator and through the gateway.

Starts a vLLM emulator and a gateway (``vlgw serve``, auth on, cache off) on loopback and drives
both with wrk at each concurrency, alternating direct and gateway runs so machine noise hits
both alike. Reports medians over the runs of p50/p99 latency and throughput, the added latency
(difference and ratio) and the gateway's CPU time per request (from /proc).

    uv run python bench/overhead.py --runs 5 --duration 5 --concurrency 1,16,64
    uv run python bench/overhead.py --runs 3 --duration 5 --concurrency 16,64 --prefill-ms 50

Loopback only; every run is bounded by --duration. Needs ``wrk`` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import cpu_seconds, stack

from tests.images import photo_jpeg

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""


def parse_wrk(out: str) -> dict[str, float]:
    def millis(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not match:
            raise ValueError(f"no {label} in wrk output:\n{out}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "p50_ms": millis("50%"),
        "p99_ms": millis("99%"),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": requests,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def pin_process(pid: int, cpu: int) -> None:
    """Every thread of ``pid`` onto one CPU (threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def run_wrk(
    url: str, body: Path, key: str, conc: int, duration: float, lua: Path, pin: bool = False
) -> dict[str, float]:
    threads = 1 if conc == 1 or pin else 2
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_KEY": key}
    out = subprocess.run(
        [
            *(["taskset", "-c", "0"] if pin else []),
            "wrk",
            f"-t{threads}",
            f"-c{conc}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(lua),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    return parse_wrk(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="emulator and wrk on CPU 0, the gateway on CPU 1 (as on a GPU host, where the model server "
        "does not compete for the gateway's cores)",
    )
    parser.add_argument(
        "--prefill-ms",
        type=float,
        default=0.0,
        help="emulator delay before answering (0: instant, the machine saturates; ~50: a model's pace)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/overhead.json"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="vlgw-bench-"))
    photo = photo_jpeg(1024, 768, quality=80, seed=3)
    b64 = base64.b64encode(photo).decode()
    direct_body = tmp / "direct.json"
    direct_body.write_text(
        json.dumps(
            {
                "model": "qwen3-vl-8b",
                "max_tokens": 64,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64}"}},
                            {"type": "text", "text": "请描述这张图片的内容"},
                        ],
                    }
                ],
            }
        )
    )
    gateway_body = tmp / "gateway.json"
    gateway_body.write_text(json.dumps({"image": b64, "prompt": "请描述这张图片的内容", "max_tokens": 64}))
    lua = tmp / "post.lua"
    lua.write_text(LUA)

    env = {"GATEWAY_CACHE_ENABLED": "false", "GATEWAY_WORKERS": str(args.workers)}
    with stack(env, ("--prefill-ms", str(args.prefill_ms))) as s:
        key, gateway_pid = s.key, s.gateway_pid
        if args.pin:
            pin_process(s.emulator_pid, 0)
            pin_process(gateway_pid, 1)
        print(
            f"photo: {len(photo)} bytes JPEG 1024x768; gateway workers: {args.workers}; runs: {args.runs} "
            f"x {args.duration}s per concurrency and path; emulator prefill {args.prefill_ms:g} ms; "
            f"{'pinned: emulator+wrk on CPU 0, gateway on CPU 1' if args.pin else 'not pinned'}",
            flush=True,
        )
        direct_url = f"{s.emulator_url}/v1/chat/completions"
        gateway_url = f"{s.gateway_url}/v1/qwen-vl"
        for url, body, k in ((direct_url, direct_body, ""), (gateway_url, gateway_body, key)):
            run_wrk(url, body, k, 4, 1.0, lua, args.pin)  # warm-up
        results: dict[str, dict[str, list[float]]] = {}
        for conc in [int(c) for c in args.concurrency.split(",")]:
            series: dict[str, list[float]] = {}
            for _ in range(args.runs):
                direct = run_wrk(direct_url, direct_body, "", conc, args.duration, lua, args.pin)
                before = cpu_seconds(gateway_pid)
                through = run_wrk(gateway_url, gateway_body, key, conc, args.duration, lua, args.pin)
                cpu_ms = (cpu_seconds(gateway_pid) - before) * 1000 / max(1, through["requests"])
                if direct["non_2xx"] or through["non_2xx"]:
                    raise RuntimeError(f"errors during the run: direct={direct} gateway={through}")
                for name, value in (
                    ("direct_p50", direct["p50_ms"]),
                    ("direct_p99", direct["p99_ms"]),
                    ("direct_rps", direct["rps"]),
                    ("gw_p50", through["p50_ms"]),
                    ("gw_p99", through["p99_ms"]),
                    ("gw_rps", through["rps"]),
                    ("added_p50", through["p50_ms"] - direct["p50_ms"]),
                    ("ratio_p50", through["p50_ms"] / direct["p50_ms"]),
                    ("rps_ratio", through["rps"] / direct["rps"]),
                    ("gw_cpu_ms", cpu_ms),
                ):
                    series.setdefault(name, []).append(value)
            results[str(conc)] = series
            med = {name: statistics.median(values) for name, values in series.items()}
            print(
                f"c={conc:<3} direct p50 {med['direct_p50']:7.2f} ms p99 {med['direct_p99']:7.2f} ms "
                f"{med['direct_rps']:7.0f} rps | gateway p50 {med['gw_p50']:7.2f} ms "
                f"p99 {med['gw_p99']:7.2f} ms "
                f"{med['gw_rps']:7.0f} rps | added p50 {med['added_p50']:+6.2f} ms (x{med['ratio_p50']:.2f}) "
                f"| rps ratio {med['rps_ratio']:.2f} | gateway CPU {med['gw_cpu_ms']:.2f} ms/req",
                flush=True,
            )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "results": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
