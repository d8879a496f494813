"""Cost of a forged-key request against a valid one, on a real gateway over loopback (issue #13).

Starts ``vlgw emulator`` and ``vlgw serve`` (auth on; the embedded store, or a real redis-server
with ``--redis``) and drives ``GET /v1/presets`` (authentication and nothing else) with wrk,
alternating the modes in every run so machine noise hits all alike:

- ``valid``: the one real key;
- ``forged``: a fresh signed-shaped key per request, tagged with a secret that is not the server's;
- ``legacy``: a fresh legacy-shaped key (correct CRC32) per request, all from one address;
- ``missing``: no key at all.

Reports medians over the runs of the gateway's CPU time per request (from /proc), p50 latency,
the ratio of each mode to ``valid`` measured in the same run, and, with ``--redis``, the store
lookups (Redis ``INFO commandstats``, HGETALL calls) each mode caused.

    uv run python bench/auth.py --runs 5 --duration 3
    uv run python bench/auth.py --runs 5 --duration 3 --redis

Loopback only; each wrk run is bounded by --duration. Needs ``wrk`` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import parse_wrk
from stack import cpu_seconds, stack

from gateway.auth import Signer
from gateway.auth.keys import generate_legacy_key
from tests.servers import RedisServer

MODES = ("valid", "forged", "legacy", "missing")
KEYS_PER_MODE = 200_000  # more than a run sends, so every forged request carries a fresh key

LUA = """
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS")) do keys[#keys + 1] = line end
local i = 0
request = function()
  i = i + 1
  local key = keys[(i - 1) % #keys + 1]
  local headers = {}
  if key ~= "-" then headers["Authorization"] = "Bearer " .. key end
  return wrk.format("GET", "/v1/presets", headers)
end
"""


def key_file(tmp: Path, mode: str, valid: str, count: int) -> Path:
    attacker = Signer(b"not the server's secret, just a guess")
    make = {
        "valid": lambda: valid,
        "forged": attacker.generate,
        "legacy": generate_legacy_key,
        "missing": lambda: "-",
    }[mode]
    path = tmp / f"{mode}.keys"
    path.write_text("\n".join(make() for _ in range(1 if mode in ("valid", "missing") else count)) + "\n")
    return path


def hgetall_calls(redis: RedisServer | None) -> int:
    if redis is None:
        return 0
    import redis as redis_py

    client = redis_py.Redis(host="127.0.0.1", port=redis.port)
    try:
        return int(client.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--redis", action="store_true", help="keys in a real redis-server (default embedded)")
    args = parser.parse_args()

    redis = RedisServer().start() if args.redis else None
    env = {"GATEWAY_REDIS_URL": redis.url} if redis else {}
    tmp = Path(tempfile.mkdtemp(prefix="vlgw-bench-auth-"))
    lua = tmp / "auth.lua"
    lua.write_text(LUA)
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    try:
        with stack(env) as s:
            files = {mode: key_file(tmp, mode, s.key, KEYS_PER_MODE) for mode in MODES}
            for run in range(args.runs):
                for mode in MODES:
                    lookups, cpu = hgetall_calls(redis), cpu_seconds(s.gateway_pid)
                    out = subprocess.run(
                        ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration:g}s", "--latency",
                         "-s", str(lua), s.gateway_url],
                        env={**os.environ, "BENCH_KEYS": str(files[mode])},
                        capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
                    stats = parse_wrk(out)
                    stats["cpu_us"] = (cpu_seconds(s.gateway_pid) - cpu) / stats["requests"] * 1e6
                    stats["lookups"] = hgetall_calls(redis) - lookups
                    results[mode].append(stats)
                print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    finally:
        if redis is not None:
            redis.stop()

    store = "redis" if redis else "embedded"
    print(f"GET /v1/presets, {args.connections} connections, {args.duration:g} s per mode per run, "
          f"{args.runs} runs, store {store}")  # fmt: skip
    print(f"{'mode':8} {'status':>7} {'CPU µs/req':>11} {'ratio':>6} {'p50 ms':>7} {'ratio':>6} "
          f"{'req/s':>8} {'lookups/run':>12}")  # fmt: skip
    summary = {}
    for mode in MODES:
        rows = results[mode]
        cpu_ratio = statistics.median(
            r["cpu_us"] / v["cpu_us"] for r, v in zip(rows, results["valid"], strict=True)
        )
        p50_ratio = statistics.median(
            r["p50_ms"] / v["p50_ms"] for r, v in zip(rows, results["valid"], strict=True)
        )
        line = {
            "cpu_us": statistics.median(r["cpu_us"] for r in rows),
            "cpu_ratio": cpu_ratio,
            "p50_ms": statistics.median(r["p50_ms"] for r in rows),
            "p50_ratio": p50_ratio,
            "rps": statistics.median(r["rps"] for r in rows),
            "lookups": statistics.median(r["lookups"] for r in rows),
            "non_2xx": statistics.median(r["non_2xx"] for r in rows),
        }
        summary[mode] = line
        status = "200" if mode == "valid" else "4xx"
        lookups = f"{line['lookups']:.0f}" if redis else "-"
        print(f"{mode:8} {status:>7} {line['cpu_us']:11.0f} {cpu_ratio:6.2f} {line['p50_ms']:7.2f} "
              f"{p50_ratio:6.2f} {line['rps']:8.0f} {lookups:>12}")  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
