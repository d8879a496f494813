"""docker-compose.yml and its overrides, checked by Compose itself and then by what they promise."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

from tests.deploy.helpers import (
    OVERRIDES,
    ROOT,
    UPSTREAM_RECOMMENDED_FLAGS,
    assert_ok,
    compose_cmd,
    compose_env,
    compose_model,
    flags,
    gateway_settings_from,
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


def test_missing_secrets_stop_compose_with_a_named_variable() -> None:
    env = compose_env()
    del env["VLLM_API_KEY"]
    result = run([*compose_cmd("base"), "--env-file", "/dev/null", "config", "--quiet"], env=env)
    assert result.returncode != 0
    assert "VLLM_API_KEY" in result.stderr


def test_env_example_is_enough_once_secrets_are_filled(tmp_path) -> None:
    text = (ROOT / ".env.example").read_text()
    filled = re.sub(r"^VLLM_API_KEY=$", "VLLM_API_KEY=abc", text, flags=re.M)
    filled = re.sub(r"^GRAFANA_ADMIN_PASSWORD=$", "GRAFANA_ADMIN_PASSWORD=abc", filled, flags=re.M)
    env_file = tmp_path / ".env"
    env_file.write_text(filled)
    env = {k: v for k, v in compose_env().items() if k not in ("VLLM_API_KEY", "GRAFANA_ADMIN_PASSWORD")}
    result = run([*compose_cmd("base"), "--env-file", str(env_file), "config", "--format", "json"], env=env)
    assert_ok(result)
    assert (
        json.loads(result.stdout)["services"]["gateway"]["environment"]["GATEWAY_UPSTREAM_API_KEY"] == "abc"
    )


def test_no_secret_has_a_value_in_env_example() -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.match(r"^(VLLM_API_KEY|GRAFANA_ADMIN_PASSWORD|HF_TOKEN)=", line):
            assert line.split("=", 1)[1] == "", line


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
        expected = dict(UPSTREAM_RECOMMENDED_FLAGS)
        if variant.startswith("fp8"):
            expected["--max-model-len"] = "16384"  # fits the KV cache of a 16 GB card
        for flag, value in expected.items():
            assert got.get(flag) == value, f"{name}: {flag}"
        assert got["--api-key"] == "test-vllm-key"
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
        assert settings.upstream_api_key is not None
        assert settings.upstream_api_key.get_secret_value() == got["--api-key"]


@pytest.mark.parametrize("variant", ["base", "two-gpus"])
def test_gateway_reaches_every_vllm_replica_and_redis(variant: str) -> None:
    model = compose_model(variant)
    gateway = model["services"]["gateway"]
    settings = gateway_settings_from(gateway["environment"])
    replicas = _vllm_services(model)
    hosts = {(urlsplit(u).hostname, urlsplit(u).port) for u in settings.upstream_urls}
    assert hosts == {(name, 8000) for name in replicas}
    assert settings.redis_url is not None and urlsplit(settings.redis_url).hostname == "redis"
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
    command = compose_model("base")["services"]["redis"]["command"]
    pairs = dict(zip(command[1::2], command[2::2], strict=True))
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
