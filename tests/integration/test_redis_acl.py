"""The Redis ACL of deploy/redis/users.acl, loaded by deploy/redis/start.sh into a real redis-server.

A real gateway process logs in as the `gateway` user (its Redis URL read from a secret file, as
compose and Kubernetes give it) and goes through everything it does with Redis: keys created,
listed and revoked by the CLI, limits (rate, tokens, concurrency scripts), a cached answer and
its hit, a streamed answer, feedback (stream) and its export, usage counters. Then:

- enough: every request succeeds, the gateway never marks Redis degraded, and Redis's own
  ``ACL LOG`` records no denied command or key;
- no more: the same user is refused FLUSHALL, CONFIG, KEYS, ACL, MONITOR, SHUTDOWN, CLIENT and
  any key outside ``vlgw:*``, and a client without a password is refused everything.

``ACL LOG`` needs a privileged user, which the shipped file does not have (``default`` is off):
the test renders a copy of users.acl with one ``admin`` line appended. The gateway's line is the
shipped one, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.retry import Retry

from tests.images import data_uri, photo_jpeg
from tests.integration.conftest import create_key
from tests.servers import GatewayProcess, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "deploy" / "redis" / "users.acl"
START = ROOT / "deploy" / "redis" / "start.sh"
PASSWORD = "gw-" + hashlib.sha256(b"test_redis_acl").hexdigest()[:32]
ADMIN = "admin-only-in-this-test"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


class AclRedis:
    """redis-server started by the deployment's start.sh with the rendered ACL file."""

    def __init__(self, workdir: Path, extra_flags: tuple[str, ...] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.extra_flags = extra_flags
        self.port = free_port()
        self.workdir = workdir
        self.password_file = workdir / "redis_password"
        self.password_file.write_text(PASSWORD + "\n")  # as an editor would save it
        self.template = workdir / "users.acl"
        self.template.write_text(ACL.read_text() + f"user admin on >{ADMIN} ~* &* +@all\n")
        self.rendered = workdir / "rendered.acl"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AclRedis:
        env = {
            "PATH": "/usr/bin:/bin",
            "REDIS_PASSWORD_FILE": str(self.password_file),
            "REDIS_ACL_TEMPLATE": str(self.template),
            "REDIS_ACL_RENDERED": str(self.rendered),
        }
        port = ["--port", str(self.port)]
        if self.extra_flags:  # TLS only: no plain-text port at all
            port = ["--port", "0", "--tls-port", str(self.port), *self.extra_flags]
        flags = [*port, "--bind", "127.0.0.1", "--save", "", "--dir", str(self.workdir)]
        self.log = self.workdir / "redis.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["sh", str(START), *flags, "--appendonly", "yes"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"redis-server did not start: {self.log.read_text()[-1500:]}") from None
        return self

    def client(self, username: str | None, password: str | None) -> redis.Redis:
        # No retries: redis-py retries a refused login (a ConnectionError) with backoff by default.
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=username,
            password=password,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[AclRedis]:
    server = AclRedis(tmp_path).start()
    yield server
    server.stop()


def test_rendered_acl_holds_a_hash_not_the_password(acl_redis: AclRedis) -> None:
    text = acl_redis.rendered.read_text()
    assert PASSWORD not in text
    assert f"#{hashlib.sha256(PASSWORD.encode()).hexdigest()}" in text
    assert "@GATEWAY_PASSWORD_SHA256@" not in text
    assert acl_redis.rendered.stat().st_mode & 0o077 == 0, "only the redis user may read it"


def test_without_a_password_nothing_is_allowed(acl_redis: AclRedis) -> None:
    with pytest.raises(AuthenticationError):
        acl_redis.client(None, None).ping()
    with pytest.raises(AuthenticationError):
        acl_redis.client("gateway", "wrong").ping()
    with pytest.raises(AuthenticationError):  # `default` is off, whatever the password
        acl_redis.client("default", PASSWORD).ping()


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "SET", "appendonly", "no"),
        ("KEYS", "*"),
        ("ACL", "LIST"),
        ("SCRIPT", "FLUSH"),
        ("CLIENT", "LIST"),
        ("SHUTDOWN",),
        ("MONITOR",),
        ("SAVE",),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("SET", "someone-else:key", "1"),  # a key outside vlgw:*
        ("GET", "session:42"),
        ("EVAL", "return redis.call('FLUSHALL')", "0"),  # scripts run with the caller's rights
        ("EVAL", "return redis.call('GET', KEYS[1])", "1", "other:x"),
    ],
    ids=lambda c: " ".join(c)[:32],
)
def test_the_gateway_user_may_do_nothing_else(acl_redis: AclRedis, command: tuple[str, ...]) -> None:
    client = acl_redis.client("gateway", PASSWORD)
    with pytest.raises(ResponseError) as refused:
        client.execute_command(*command)
    # NOPERM for a command; inside a script Redis words it as the script's user being refused.
    assert isinstance(refused.value, NoPermissionError) or (
        "can't run this command" in str(refused.value)
        or "No permissions to access a key" in str(refused.value)
    ), refused.value
    assert client.ping() is True  # the connection itself is fine


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    files = {
        name: directory / name for name in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    }
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for argv in (
        ["req", "-x509", *ec, "-keyout", files["ca.key"], "-out", files["ca.pem"],
         "-days", "1", "-subj", "/CN=vlgw test CA"],
        ["req", *ec, "-keyout", files["server.key"], "-out", files["server.csr"], "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", files["server.csr"], "-CA", files["ca.pem"], "-CAkey", files["ca.key"],
         "-CAcreateserial", "-out", files["server.pem"], "-days", "1", "-extfile", directory / "san.ext"],
    ):  # fmt: skip
        subprocess.run([openssl, *map(str, argv)], check=True, capture_output=True, timeout=30)
    return files


@pytest.mark.slow
def test_the_gateway_reaches_redis_over_tls_as_the_acl_user(emulator, tmp_path: Path) -> None:
    """rediss:// (docs/deployment.md, "Redis"): TLS only, the CA given in the URL."""
    tls = make_tls_files(tmp_path)
    flags = ("--tls-cert-file", str(tls["server.pem"]), "--tls-key-file", str(tls["server.key"]))
    flags += ("--tls-ca-cert-file", str(tls["ca.pem"]), "--tls-auth-clients", "no")
    server = AclRedis(tmp_path, flags).start()
    try:
        url = f"rediss://gateway:{PASSWORD}@127.0.0.1:{server.port}/0?ssl_ca_certs={tls['ca.pem']}"
        # Without the CA the certificate is not trusted: redis-py verifies by default.
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(url.split("?")[0], socket_timeout=5, retry=Retry(NoBackoff(), 0)).ping()
        with pytest.raises(redis.ConnectionError):  # and there is no plain-text port
            redis.Redis(
                host="127.0.0.1", port=server.port, socket_timeout=2, retry=Retry(NoBackoff(), 0)
            ).ping()
        url_file = tmp_path / "redis_url"
        url_file.write_text(url)
        env = {
            "GATEWAY_UPSTREAM_URLS": emulator.url,
            "GATEWAY_REDIS_URL_FILE": str(url_file),
            "GATEWAY_REDIS_TIMEOUT": "2",
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        }
        key = create_key(env, "tls-app")
        gw = GatewayProcess({**env, "GATEWAY_LOG_LEVEL": "info"}).start()
        try:
            body = {
                "image": data_uri(photo_jpeg(320, 240)),
                "prompt": "over TLS",
                "max_tokens": 32,
                "temperature": 0,
            }
            headers = {"authorization": f"Bearer {key}"}
            caches = [
                httpx.post(f"{gw.url}/v1/qwen-vl", json=body, headers=headers, timeout=30) for _ in range(2)
            ]
            assert [r.status_code for r in caches] == [200, 200]
            assert [r.headers["x-cache"] for r in caches] == ["MISS", "HIT"]
        finally:
            gw.stop()
        assert PASSWORD not in gw.output()
        admin = redis.Redis.from_url(
            f"rediss://admin:{ADMIN}@127.0.0.1:{server.port}/0?ssl_ca_certs={tls['ca.pem']}", socket_timeout=5
        )
        assert admin.execute_command("ACL", "LOG") == []
        assert any(k.startswith(b"vlgw:cache:") for k in admin.scan_iter("vlgw:*"))
    finally:
        server.stop()


def vlgw(env: dict[str, str], *argv: str) -> None:
    """One `vlgw` CLI command as an operator runs it, which must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, (argv, done.stdout, done.stderr)


@pytest.mark.slow
def test_a_gateway_logged_in_as_the_acl_user_does_everything_it_needs(
    acl_redis: AclRedis, emulator, tmp_path: Path
) -> None:
    url_file = tmp_path / "redis_url"
    url_file.write_text(f"redis://gateway:{PASSWORD}@127.0.0.1:{acl_redis.port}/0\n")
    env = {
        "GATEWAY_UPSTREAM_URLS": emulator.url,
        "GATEWAY_REDIS_URL_FILE": str(url_file),
        "GATEWAY_REDIS_TIMEOUT": "2",  # two busy cores: a slow answer must not read as an outage
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DEFAULT_RPM": "600",
        "GATEWAY_DEFAULT_TPM": "1000000",
        "GATEWAY_DEFAULT_CONCURRENCY": "4",
        "GATEWAY_IMAGE_ALLOW_PRIVATE_URLS": "true",
        "GATEWAY_LOG_LEVEL": "info",
    }
    cli_env = {k: v for k, v in env.items() if k != "GATEWAY_LOG_LEVEL"}
    key = create_key(cli_env, "acl-app")
    create_key(cli_env, "acl-other")
    gw = GatewayProcess(env).start()
    try:
        headers = {"authorization": f"Bearer {key}"}
        body = {
            "image": data_uri(photo_jpeg()),
            "prompt": "What is this?",
            "max_tokens": 32,
            "temperature": 0,
        }
        first = httpx.post(f"{gw.url}/v1/qwen-vl", json=body, headers=headers, timeout=30)
        assert first.status_code == 200, first.text
        assert first.headers["x-cache"] == "MISS"
        second = httpx.post(f"{gw.url}/v1/qwen-vl", json=body, headers=headers, timeout=30)
        assert second.headers["x-cache"] == "HIT", "the cached answer came back from Redis"

        stream_body = {
            "model": "qwen3-vl",
            "stream": True,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hello over a stream"}],
        }
        with httpx.stream(
            "POST", f"{gw.url}/v1/chat/completions", json=stream_body, headers=headers, timeout=30
        ) as streamed:
            assert streamed.status_code == 200
            assert "data: [DONE]" in streamed.read().decode()

        feedback = {"request_id": first.json()["request_id"], "verdict": "good"}
        answer = httpx.post(f"{gw.url}/v1/feedback", json=feedback, headers=headers, timeout=10)
        assert answer.status_code == 200 and answer.json()["code"] == 0, answer.text
        usage = httpx.get(f"{gw.url}/v1/usage", params={"days": 1}, headers=headers, timeout=10).json()
        assert usage["days"][-1]["requests"] >= 3

        out = tmp_path / "feedback.jsonl"
        today = dt.datetime.now(dt.UTC).date().isoformat()
        backup = tmp_path / "backup.jsonl"
        for argv in (
            ["feedback", "export", "--since", today, "--out", str(out)],
            ["keys", "list"],
            ["keys", "rotate", "acl-other", "--grace", "1h"],
            ["keys", "revoke", "acl-other"],
            ["backup", "--out", str(backup)],
        ):
            vlgw(cli_env, *argv)
        assert [json.loads(line)["verdict"] for line in out.read_text().splitlines()] == ["good"]

        metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
        assert "gateway_redis_degraded 0.0" in metrics
        assert "gateway_redis_errors_total{" not in metrics, "a Redis call failed"
    finally:
        gw.stop()

    # `vlgw restore` into a second, empty Redis with the same ACL, as the same user.
    second = AclRedis(tmp_path / "second").start()
    try:
        url_file.write_text(f"redis://gateway:{PASSWORD}@127.0.0.1:{second.port}/0\n")
        vlgw(cli_env, "restore", str(backup))
        restored = second.client("admin", ADMIN)
        assert restored.execute_command("ACL", "LOG") == [], "the ACL refused `vlgw restore` something"
        assert any(b"{keys}" in key for key in restored.scan_iter("vlgw:*"))
    finally:
        second.stop()

    admin = acl_redis.client("admin", ADMIN)
    denied = admin.execute_command("ACL", "LOG")
    assert denied == [], f"the ACL refused the gateway something it needs: {denied}"
    stored = " ".join(key.decode() for key in admin.scan_iter("vlgw:*"))
    for kind in ("{keys}", "cache", "usage", "feedback"):
        assert kind in stored, f"no {kind} key: {stored}"
    assert "redis_degraded" not in gw.output()
    # Nothing secret in a log line: the gateway's, at info level, or redis-server's.
    assert PASSWORD not in gw.output() and PASSWORD not in acl_redis.log.read_text()
