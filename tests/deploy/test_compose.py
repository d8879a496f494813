"""docker-compose.yml and its overrides, checked by Compose itself and then by what they promise."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.settings import Settings
from tests.deploy.helpers import (
    COMPOSE_FILE,
    DEPLOYED_FLAGS,
    OVERRIDES,
    ROOT,
    SECRET_USERS,
    assert_ok,
    compose_cmd,
    compose_env,
    compose_model,
    flags,
    gateway_settings_from,
    load_yaml,
    require_tool,
    run,
)

VLLM_VARIANTS = ["base", "fp8", "two-gpus", "fp8+local-weights"]


def _duration_seconds(text: str) -> float:
    """Go durations as Compose prints them: 20m0s, 1m30s, 15s."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", text))


def _vllm_services(model: dict) -> dict[str, dict]:
    return {name: svc for name, svc in model["services"].items() if svc.get("image", "").startswith("vllm/")}


@pytest.mark.parametrize("variant", sorted(OVERRIDES))
def test_compose_accepts_the_stack(variant: str) -> None:
    result = run([*compose_cmd(variant), "--env-file", "/dev/null", "config", "--quiet"], env=compose_env())
    assert_ok(result)


# A .env as an operator might still write it from habit (the old layout put secrets there):
# none of these values may reach the gateway, whose container faces the internet.
LEAKY_DOTENV = {
    "VLLM_API_KEY": "fake-dotenv-vllm-key-1f3a",
    "GRAFANA_ADMIN_PASSWORD": "fake-dotenv-grafana-9c2e",
    "HF_TOKEN": "hf_fakedotenvtoken7b1d",
    "REDIS_PASSWORD": "fake-dotenv-redis-4e5f",
}


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """The secret files as deploy/make-secrets.sh writes them (random values)."""
    directory = tmp_path / "secrets"
    result = run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(directory)],
        env={**compose_env(), "HF_TOKEN": "hf_fakesecretfile0a9b"},
    )
    assert_ok(result)
    return directory


def test_make_secrets_writes_every_secret_compose_mounts(secrets_dir: Path) -> None:
    model = compose_model("base")
    assert set(model["secrets"]) == set(SECRET_USERS)
    for name in SECRET_USERS:
        path = secrets_dir / name
        assert oct(path.stat().st_mode & 0o777) == "0o644", name
        if name != "hf_token":
            assert len(path.read_text()) >= 32, f"{name} is not a random secret"
    assert oct(secrets_dir.stat().st_mode & 0o777) == "0o700"
    assert (secrets_dir / "hf_token").read_text() == "hf_fakesecretfile0a9b"
    password = (secrets_dir / "redis_password").read_text()
    url = urlsplit((secrets_dir / "redis_url").read_text())
    assert (url.scheme, url.username, url.password, url.hostname, url.port) == (
        "redis",
        "gateway",
        password,
        "redis",
        6379,
    )
    # A second run keeps every file (rotation is: delete one, run again).
    before = {name: (secrets_dir / name).read_text() for name in SECRET_USERS}
    assert_ok(run(["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(secrets_dir)], env=compose_env()))
    assert before == {name: (secrets_dir / name).read_text() for name in SECRET_USERS}


@pytest.mark.parametrize("variant", ["tls", "two-gpus", "fp8+local-weights"])
def test_each_service_gets_only_the_secrets_it_uses(variant: str) -> None:
    model = compose_model(variant)
    got: dict[str, set[str]] = {name: set() for name in SECRET_USERS}
    for service, svc in model["services"].items():
        role = "vllm" if service in _vllm_services(model) else service  # vllm-1 is a vllm too
        for secret in svc.get("secrets", []):
            assert secret["target"] == f"/run/secrets/{secret['source']}"
            got[secret["source"]].add(role)
    assert got == SECRET_USERS
    if variant == "two-gpus":
        assert {s["source"] for s in model["services"]["vllm-1"]["secrets"]} == {"vllm_api_key", "hf_token"}


def test_no_secret_in_the_gateway_config_output(tmp_path: Path, secrets_dir: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in LEAKY_DOTENV.items()))
    env = compose_env(VLGW_SECRETS_DIR=str(secrets_dir))
    result = run([*compose_cmd("tls"), "--env-file", str(env_file), "config", "--format", "json"], env=env)
    assert_ok(result)
    secret_values = [(secrets_dir / name).read_text() for name in SECRET_USERS]
    secret_values += [v for v in secret_values if v]  # the redis password also sits in redis_url
    everything = result.stdout
    for value in [*LEAKY_DOTENV.values(), *secret_values]:
        assert value not in everything, "a secret appears in `docker compose config`"
    gateway = json.loads(everything)["services"]["gateway"]
    # The gateway names its secrets by file only.
    for name in ("UPSTREAM_API_KEY", "REDIS_URL", "METRICS_TOKEN", "KEY_SECRET"):
        assert f"GATEWAY_{name}" not in gateway["environment"]
        assert gateway["environment"][f"GATEWAY_{name}_FILE"].startswith("/run/secrets/")
    assert not any("HF_" in k or "GRAFANA" in k or k.startswith("VLLM_") for k in gateway["environment"])
    # .env is compose's own: the gateway's optional env file is gateway.env (settings only).
    source = load_yaml(COMPOSE_FILE)["services"]["gateway"]
    assert source["env_file"] == [{"path": "gateway.env", "required": False}]


def test_gateway_reads_each_secret_file_it_is_given(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's _FILE variables, pointed at real secret files, give the secret values."""
    gateway = compose_model("base")["services"]["gateway"]
    for variable, target in gateway["environment"].items():
        if variable.endswith("_FILE") and target.startswith("/run/secrets/"):
            monkeypatch.setenv(variable, str(secrets_dir / target.removeprefix("/run/secrets/")))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.upstream_api_key is not None and settings.metrics_token is not None
    assert settings.upstream_api_key.get_secret_value() == (secrets_dir / "vllm_api_key").read_text()
    assert settings.metrics_token.get_secret_value() == (secrets_dir / "metrics_token").read_text()
    assert settings.redis_url == (secrets_dir / "redis_url").read_text()
    # SecretStr fields never print their value (repr, str, logs of the settings object).
    assert (secrets_dir / "vllm_api_key").read_text() not in repr(settings)


def test_env_example_is_enough_with_the_secret_files(tmp_path: Path, secrets_dir: Path) -> None:
    env = compose_env(VLGW_SECRETS_DIR=str(secrets_dir))
    result = run(
        [*compose_cmd("base"), "--env-file", str(ROOT / ".env.example"), "config", "--quiet"], env=env
    )
    assert_ok(result)


def test_env_example_holds_no_secret() -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        assert not re.match(r"^#?\s*(VLLM_API_KEY|GRAFANA_ADMIN_PASSWORD|HF_TOKEN|REDIS_PASSWORD)=", line), (
            line
        )


def test_only_the_gateway_is_published_to_the_world() -> None:
    model = compose_model("two-gpus")
    public = {}
    for name, svc in model["services"].items():
        for port in svc.get("ports", []):
            if port.get("host_ip") not in ("127.0.0.1", "::1"):
                public[name] = port["target"]
    assert public == {"gateway": 8080}
    assert model["services"]["gateway"]["environment"]["GATEWAY_PORT"] == "8080"


def test_model_tier_and_redis_sit_on_the_internal_network_only() -> None:
    model = compose_model("base")
    assert model["networks"]["backend"].get("internal") is True
    assert set(model["services"]["redis"]["networks"]) == {"backend"}
    # vLLM also has an egress-only network for model downloads, which publishes nothing.
    assert set(model["services"]["vllm"]["networks"]) == {"backend", "models"}
    assert not model["services"]["vllm"].get("ports")
    offline = compose_model("fp8+local-weights")
    assert set(offline["services"]["vllm"]["networks"]) == {"backend"}


def test_metrics_port_is_internal() -> None:
    gateway = compose_model("base")["services"]["gateway"]
    assert gateway["environment"]["GATEWAY_METRICS_PORT"] == "9100"
    assert "9100" in gateway.get("expose", [])
    assert all(p["target"] != 9100 for p in gateway.get("ports", []))


def test_vllm_service_follows_upstream_md() -> None:
    vllm = compose_model("base")["services"]["vllm"]
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", vllm["image"])
    assert vllm["ipc"] == "host"
    assert vllm["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    ]
    assert any(v["target"] == "/root/.cache/huggingface" for v in vllm["volumes"])
    health = vllm["healthcheck"]
    assert health["test"][:2] == ["CMD", "curl"] and health["test"][-1].endswith(":8000/health")
    assert _duration_seconds(health["start_period"]) >= 600, "model load takes minutes"
    assert vllm["environment"]["VLLM_USE_MODELSCOPE"] == "False"


@pytest.mark.parametrize("variant", VLLM_VARIANTS)
def test_vllm_flags_include_the_recommended_ones(variant: str) -> None:
    for name, svc in _vllm_services(compose_model(variant)).items():
        _, got = flags(svc["command"])
        expected = dict(DEPLOYED_FLAGS)
        if variant.startswith("fp8"):
            expected["--max-model-len"] = "16384"  # fits the KV cache of a 16 GB card
        for flag, value in expected.items():
            assert got.get(flag) == value, f"{name}: {flag}"
        # The key comes from the secret file through vLLM's VLLM_API_KEY, never as a flag.
        assert "--api-key" not in got
        assert "VLLM_API_KEY" not in svc["environment"]
        assert svc["entrypoint"][:2] == ["/bin/sh", "-c"]
        assert "/run/secrets/vllm_api_key" in svc["entrypoint"][2]
        # Data URIs only: vLLM's own fetcher must not reach anything.
        assert got["--allowed-media-domains"].endswith(".invalid")


@pytest.mark.parametrize("variant", VLLM_VARIANTS)
def test_gateway_settings_agree_with_vllm_flags(variant: str) -> None:
    model = compose_model(variant)
    env = model["services"]["gateway"]["environment"]
    settings = gateway_settings_from(env)
    for svc in _vllm_services(model).values():
        _, got = flags(svc["command"])
        assert settings.upstream_model == got["--served-model-name"]
        assert settings.upstream_max_model_len == int(got["--max-model-len"])
        assert settings.image_pixel_budget == json.loads(got["--mm-processor-kwargs"])["max_pixels"]
        assert settings.image_max_images == json.loads(got["--limit-mm-per-prompt"])["image"]
        assert settings.upstream_max_inflight == int(got["--max-num-seqs"])
        assert env["GATEWAY_UPSTREAM_API_KEY_FILE"] == "/run/secrets/vllm_api_key"


@pytest.mark.parametrize("variant", ["base", "two-gpus"])
def test_gateway_reaches_every_vllm_replica_and_redis(variant: str) -> None:
    model = compose_model(variant)
    gateway = model["services"]["gateway"]
    settings = gateway_settings_from(gateway["environment"])
    replicas = _vllm_services(model)
    hosts = {(urlsplit(u).hostname, urlsplit(u).port) for u in settings.upstream_urls}
    assert hosts == {(name, 8000) for name in replicas}
    # The Redis URL is a secret file; make-secrets.sh writes it for host `redis` (tested above).
    assert gateway["environment"]["GATEWAY_REDIS_URL_FILE"] == "/run/secrets/redis_url"
    for name in [*replicas, "redis"]:
        assert gateway["depends_on"][name]["condition"] == "service_healthy"


def test_two_gpus_pins_one_distinct_gpu_per_replica() -> None:
    replicas = _vllm_services(compose_model("two-gpus"))
    assert len(replicas) == 2
    ids = []
    for svc in replicas.values():
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        assert "count" not in device
        ids += device["device_ids"]
        assert svc["networks"]["backend"]["aliases"] == ["vllm-replicas"]
    assert sorted(ids) == ["0", "1"]


def test_gateway_container_is_locked_down() -> None:
    gateway = compose_model("base")["services"]["gateway"]
    assert gateway["read_only"] is True
    assert gateway["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in gateway["security_opt"]
    assert gateway.get("user") in (None, "10001", "10001:10001"), "runs as the image's non-root user"
    assert gateway["healthcheck"]["test"][-1].endswith("urlopen('http://127.0.0.1:8080/healthz', timeout=2)")
    grace = _duration_seconds(gateway["stop_grace_period"])
    assert grace > float(gateway["environment"]["GATEWAY_SHUTDOWN_GRACE_SECONDS"])


def test_redis_persists_and_never_evicts_keys_without_ttl() -> None:
    redis = compose_model("base")["services"]["redis"]
    # start.sh renders the ACL (the gateway user only) and execs redis-server with these flags.
    assert redis["entrypoint"] == ["/bin/sh", "/etc/vlgw-redis/start.sh"]
    assert redis["environment"]["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"
    assert redis["user"] == "999:999" and redis["read_only"] is True
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in redis["volumes"])
    command = redis["command"]
    pairs = dict(zip(command[0::2], command[1::2], strict=True))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    assert pairs["--maxmemory-policy"] == "volatile-lru"
    assert "--maxmemory" in pairs


def test_every_image_is_pinned() -> None:
    for name, svc in compose_model("two-gpus")["services"].items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and "/" not in tag, f"{name}: {image}"


def test_mounted_config_exists_in_the_repository() -> None:
    model = compose_model("base")
    for name, svc in model["services"].items():
        for volume in svc.get("volumes", []):
            if volume["type"] == "bind":
                source = ROOT / volume["source"]  # Compose resolves it to an absolute path
                assert source.exists() and source.is_relative_to(ROOT), f"{name}: {source}"
                assert volume.get("read_only") is True, f"{name}: config mounts are read-only"


def test_gateway_env_example_shows_the_defaults() -> None:
    """Each `#GATEWAY_X=value` line in gateway.env.example is the setting's default (or an example
    of a limit whose default is none)."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    shown = re.findall(
        r"^#(GATEWAY_[A-Z0-9_]+)=(.*)$", (ROOT / "gateway.env.example").read_text(), flags=re.M
    )
    assert shown
    for variable, value in shown:
        field = variable.removeprefix("GATEWAY_").lower()
        default = getattr(defaults, field)
        if default is None:
            continue
        parsed = getattr(gateway_settings_from({variable: value}), field)
        assert parsed == default, f"{variable}={value} is not the default {default!r}"


def test_vllm_entrypoint_passes_the_secret_file_as_vllm_api_key(tmp_path: Path) -> None:
    """Run the compose entrypoint with sh, a stand-in `vllm` that prints what it got, and a key file."""
    vllm = compose_model("base")["services"]["vllm"]
    key_file = tmp_path / "vllm_api_key"
    key_file.write_text("key-from-the-secret-file")
    script = vllm["entrypoint"][2].replace("$$", "$").replace("/run/secrets/vllm_api_key", str(key_file))
    (tmp_path / "vllm").write_text('#!/bin/sh\nprintf "%s|" "$VLLM_API_KEY" "$@"\n')
    (tmp_path / "vllm").chmod(0o755)
    args = vllm["command"]
    result = run(
        [*vllm["entrypoint"][:2], script, *vllm["entrypoint"][3:], *args],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )
    assert_ok(result)
    assert result.stdout.split("|")[:-1] == ["key-from-the-secret-file", "serve", *args]


def test_tls_profile_puts_only_caddy_on_the_internet() -> None:
    env = compose_env(VLGW_PUBLISH_ADDRESS="127.0.0.1")
    result = run([*compose_cmd("tls"), "--env-file", "/dev/null", "config", "--format", "json"], env=env)
    assert_ok(result)
    model = json.loads(result.stdout)
    public = {
        (name, port["target"])
        for name, svc in model["services"].items()
        for port in svc.get("ports", [])
        if port.get("host_ip") not in ("127.0.0.1", "::1")
    }
    assert public == {("caddy", 80), ("caddy", 443)}
    caddy = model["services"]["caddy"]
    assert caddy["environment"]["VLGW_DOMAIN"] == "api.example.com"
    assert {v["target"] for v in caddy["volumes"]} >= {"/etc/caddy/Caddyfile", "/data"}
    assert set(caddy["networks"]) == {"frontend"} and "frontend" in model["services"]["gateway"]["networks"]
    # Without the profile there is no Caddy at all.
    assert "caddy" not in compose_model("base")["services"]


def _caddy_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "VLGW_DOMAIN": "api.example.com",
    }


def test_caddyfile_is_valid_and_proxies_to_the_gateway(tmp_path: Path) -> None:
    caddy = require_tool("caddy", "scripts/install-validators.sh extracts it from Debian's caddy package")
    caddyfile = str(ROOT / "deploy" / "caddy" / "Caddyfile")
    assert_ok(
        run([caddy, "validate", "--config", caddyfile, "--adapter", "caddyfile"], env=_caddy_env(tmp_path))
    )
    adapted = run([caddy, "adapt", "--config", caddyfile, "--adapter", "caddyfile"], env=_caddy_env(tmp_path))
    assert_ok(adapted)
    config = json.loads(adapted.stdout)
    (server,) = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]  # HTTPS, with Caddy's automatic HTTP->HTTPS redirect on :80
    (route,) = server["routes"]
    assert route["match"] == [{"host": ["api.example.com"]}]
    handlers = [h for sub in route["handle"] for r in sub["routes"] for h in r["handle"]]
    (proxy,) = [h for h in handlers if h["handler"] == "reverse_proxy"]
    gateway_port = compose_model("base")["services"]["gateway"]["environment"]["GATEWAY_PORT"]
    assert proxy["upstreams"] == [{"dial": f"gateway:{gateway_port}"}]
    assert proxy["flush_interval"] == -1, "streams must not be buffered"
    # Automatic HTTPS stays on: no `auto_https off`, no plain-HTTP-only site.
    assert "automatic_https" not in server
