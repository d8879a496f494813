"""Real Redis topologies on loopback for tests: a three-node Cluster and a Sentinel group.

Both are Debian's binaries (``redis-server``, ``redis-sentinel``, ``redis-cli``; installed by
scripts/install-test-deps.sh), each process with its own temporary directory and no persistence.
Start-up waits for the topology to be usable (all slots served; sentinels that know the replica
and each other), so a test never races the set-up.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.servers import free_port, wait_for_port

START_TIMEOUT = 20.0


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (scripts/install-test-deps.sh installs it)")
    return path


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)


def _wait(what: str, ready: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout}s")
        time.sleep(0.1)


class _Processes:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vlgw-redis-topology-"))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, port: int, argv: list[str]) -> None:
        log = open(self.dir / f"{port}.log", "wb")  # noqa: SIM115 (the child keeps it)
        self.procs[port] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        wait_for_port(port)

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(timeout=10)

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill(port)
        shutil.rmtree(self.dir, ignore_errors=True)

    def server(self, port: int, *extra: str) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir()
        argv = [_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        self.spawn(port, [*argv, "--appendonly", "no", "--dir", str(node_dir), *extra])


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            try:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue


class RedisClusterNodes(_Processes):
    """Three primaries sharing the 16384 slots (each with ``replicas`` replicas), made with
    ``redis-cli --cluster create``; a node is considered failed after 1 s (``cluster-node-timeout``)."""

    def __init__(self, primaries: int = 3, replicas: int = 0) -> None:
        super().__init__()
        self.replicas = replicas
        self.ports = [_cluster_port() for _ in range(primaries * (1 + replicas))]
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        self.url = f"redis+cluster://{nodes}"

    def start(self) -> RedisClusterNodes:
        for port in self.ports:
            self.server(port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                        "--cluster-node-timeout", "1000")  # fmt: skip
        subprocess.run(
            [_binary("redis-cli"), "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=START_TIMEOUT,
        )  # fmt: skip
        _wait("redis cluster", self._healthy)
        return self

    def _healthy(self) -> bool:
        for port in self.procs:
            with self.node(port) as node:
                if "cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
                    return False
                replication = node.info("replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False
        return True

    def node(self, port: int) -> redis.Redis:
        return _client(port)

    def primary_of(self, key: str) -> int:
        """The port of the primary serving ``key``'s slot now."""
        with self.node(next(iter(self.procs))) as node:
            slot = int(node.execute_command("CLUSTER", "KEYSLOT", key))
            for first, last, primary, *_ in node.execute_command("CLUSTER", "SLOTS"):
                if first <= slot <= last:
                    return int(primary[1])
        raise LookupError(slot)

    def wait_failover(self, key: str, old_port: int, timeout: float = START_TIMEOUT) -> int:
        """Wait until another node serves ``key``'s slot and the cluster is whole again; its port."""
        _wait("cluster failover", lambda: self.primary_of(key) != old_port and self._healthy(), timeout)
        return self.primary_of(key)

    def keys_per_node(self, pattern: str) -> dict[int, int]:
        """How many keys matching ``pattern`` each live node holds."""
        counts = {}
        for port in self.procs:
            with self.node(port) as client:
                counts[port] = sum(1 for _ in client.scan_iter(match=pattern, count=1000))
        return counts

    def flush(self) -> None:
        for port in self.procs:
            with self.node(port) as client:
                if client.info("replication")["role"] == "master":
                    client.flushall()


SERVICE = "vlgw"


class SentinelGroup(_Processes):
    """One primary, one replica and three ``redis-sentinel`` processes watching them (quorum 2)."""

    def __init__(self, down_after_ms: int = 1000) -> None:
        super().__init__()
        self.down_after_ms = down_after_ms
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        sentinels = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        self.url = f"redis+sentinel://{sentinels}/{SERVICE}"

    def start(self) -> SentinelGroup:
        self.server(self.primary_port)
        self.server(self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.spawn(port, [_binary("redis-sentinel"), str(conf)])

        def known() -> bool:
            for port in self.sentinel_ports:
                with _client(port) as sentinel:
                    replicas = sentinel.execute_command("SENTINEL", "REPLICAS", SERVICE)
                    others = sentinel.execute_command("SENTINEL", "SENTINELS", SERVICE)
                    if len(replicas) != 1 or len(others) != 2:
                        return False
            with _client(self.replica_port) as replica:
                return bool(replica.info("replication")["master_link_status"] == "up")

        _wait("sentinel group", known)
        return self

    def node(self, port: int) -> redis.Redis:
        return _client(port)

    def primary(self) -> int:
        """The port the sentinels name as primary now."""
        with _client(self.sentinel_ports[0]) as sentinel:
            _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def kill_primary(self) -> int:
        """Kill the primary process (no shutdown, as a crash); its port."""
        port = self.primary()
        self.kill(port)
        return port

    def wait_promoted(self, old_port: int, timeout: float = START_TIMEOUT) -> int:
        """Wait until every sentinel names another primary and it accepts writes; its port."""

        def promoted() -> bool:
            for port in self.sentinel_ports:
                with _client(port) as sentinel:
                    _, named = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                if int(named) == old_port:
                    return False
            with _client(self.primary()) as primary:
                return bool(primary.info("replication")["role"] == "master")

        _wait("sentinel failover", promoted, timeout)
        return self.primary()
