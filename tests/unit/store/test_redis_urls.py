"""GATEWAY_REDIS_URL forms (docs/redis.md): one node, TLS, Sentinel, Cluster; and what is refused."""

from __future__ import annotations

import pytest

from gateway.settings import SettingsError, load_settings
from gateway.store.redis import ResilientRedis
from gateway.store.topology import InvalidRedisUrl, parse_redis_url


def test_a_single_node_url_is_handed_to_redis_py_as_is() -> None:
    target = parse_redis_url("redis://:secret@10.0.0.5:6380/2")
    assert (target.mode, target.url, target.tls) == ("single", "redis://:secret@10.0.0.5:6380/2", False)
    assert parse_redis_url("rediss://gw:secret@redis.internal:6379/0").tls
    assert parse_redis_url("unix:///run/redis.sock?db=1").mode == "single"


def test_sentinel_url_names_its_sentinels_service_database_and_credentials() -> None:
    target = parse_redis_url(
        "redis+sentinel://gateway:p%40ss@s1.internal:26379,[::1]:26380/vlgw-primary/3?sentinel_password=sp"
    )
    assert target.mode == "sentinel"
    assert target.nodes == (("s1.internal", 26379), ("::1", 26380))
    assert (target.service, target.db) == ("vlgw-primary", 3)
    assert (target.username, target.password, target.sentinel_password) == ("gateway", "p@ss", "sp")
    assert not target.tls and parse_redis_url("rediss+sentinel://h:1/svc").tls
    assert parse_redis_url("redis+sentinel://h:26379/svc").db == 0
    assert "p%40ss" not in target.safe and "sentinel_password" not in target.safe


def test_cluster_url_lists_seed_nodes() -> None:
    target = parse_redis_url("rediss+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001")
    assert target.mode == "cluster" and target.tls and target.password == "pw"
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert target.safe == "rediss+cluster://10.0.0.1:7000,10.0.0.2:7001"


def test_sentinel_and_cluster_urls_carry_tls_files_as_parameters() -> None:
    target = parse_redis_url(
        "rediss+cluster://n1:7000?ssl_ca_certs=/etc/vlgw/ca.pem&ssl_check_hostname=false"
    )
    assert dict(target.tls_options) == {"ssl_ca_certs": "/etc/vlgw/ca.pem", "ssl_check_hostname": False}
    sentinel = parse_redis_url("rediss+sentinel://s1:26379/svc?ssl_certfile=/c.pem&ssl_keyfile=/k.pem")
    assert dict(sentinel.tls_options) == {"ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem"}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://redis:6379", "must start with one of"),
        ("redis-sentinel://h:26379/svc", "must start with one of"),
        ("redis+sentinel://h:26379", "service"),
        ("redis+sentinel://h:26379/svc/db1", "service"),
        ("redis+sentinel://h/svc", "is not host:port"),
        ("redis+cluster://h:7000,h2/", "is not host:port"),
        ("redis+cluster://h:7000/2", "only database 0"),
        ("redis+cluster://h:7000?ssl_ca_cert=/x", "unknown parameter"),
    ],
)
def test_malformed_urls_are_refused_naming_the_variable(url: str, says: str) -> None:
    with pytest.raises(InvalidRedisUrl, match=says) as info:
        parse_redis_url(url)
    assert "GATEWAY_REDIS_URL" in str(info.value)


def test_settings_refuse_a_malformed_url_at_start_up() -> None:
    with pytest.raises(SettingsError, match="GATEWAY_REDIS_URL"):
        load_settings(_env_file=None, redis_url="redis+cluster://nohost")
    assert load_settings(_env_file=None, redis_url="").redis_url is None


async def test_each_form_builds_its_client_without_connecting() -> None:
    for url, mode in [
        ("redis://127.0.0.1:1/0", "single"),
        ("redis+sentinel://127.0.0.1:1,127.0.0.1:2/svc", "sentinel"),
        ("redis+cluster://127.0.0.1:1", "cluster"),
    ]:
        redis = ResilientRedis(url, timeout=0.05, breaker_failures=1, breaker_reset_seconds=0.1)
        assert redis.info()["mode"] == mode and redis.cluster == (mode == "cluster")
        await redis.connect()  # nothing listens: logged, not raised (the breaker handles outages)
        assert not await redis.ping()
        await redis.aclose()
