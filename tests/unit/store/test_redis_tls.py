"""``rediss://``: every Redis-backed part over TLS to a real redis-server, and the certificate checked.

The certificates are made per run with the ``openssl`` command (a throwaway CA and a server
certificate for 127.0.0.1); redis-server serves only its TLS port.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.redis import ResilientRedis
from tests.integration.redis_parts import CHECKS
from tests.servers import free_port, wait_for_port


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A redis-server with only a TLS port; its port and the CA that signed its certificate."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not installed (scripts/install-test-deps.sh installs it)")
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "1", "-subj", "/CN=vlgw test CA", cwd=d)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "1", "-extfile", "san.ext", cwd=d)  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no", "--save", "", "--appendonly", "no"],
        cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(port)
    yield port, d / "ca.crt"
    proc.kill()
    proc.wait(timeout=10)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
async def test_every_part_works_over_tls(tls_redis: tuple[int, Path], check) -> None:
    port, ca = tls_redis
    await check(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}")


async def test_an_untrusted_certificate_is_refused(tls_redis: tuple[int, Path]) -> None:
    port, _ = tls_redis
    redis = ResilientRedis(
        f"rediss://127.0.0.1:{port}/0", timeout=2, breaker_failures=3, breaker_reset_seconds=1
    )
    assert not await redis.ping()  # the test CA is not in the system store: no connection
    await redis.aclose()
    plain = ResilientRedis(
        f"redis://127.0.0.1:{port}/0", timeout=2, breaker_failures=3, breaker_reset_seconds=1
    )
    assert not await plain.ping()  # and the port speaks nothing but TLS
    await plain.aclose()
