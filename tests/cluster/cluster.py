"""A real Weaviate cluster on loopback: N ``weaviate-server`` processes from the one pinned binary,
joined by memberlist (``CLUSTER_JOIN``) and Raft (``RAFT_JOIN``, ``RAFT_BOOTSTRAP_EXPECT=N``)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

from citebot.weaviate_server import server_environment
from tests.weaviate_process import WeaviateProcess


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free loopback ports."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size > 65000:
            continue
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports")


class ClusterNode(WeaviateProcess):
    """One node: fixed ports (the others find it by them), so a restart rejoins as the same node."""

    def __init__(self, binary: Path, root: Path, name: str, base: int, env: dict[str, str]) -> None:
        super().__init__(binary, root / name, http_port=base, grpc_port=base + 1, log_path=root / f"{name}.log")
        self.name = name
        self._env = env

    def start(self, timeout_s: float = 90.0, attempts: int = 1) -> ClusterNode:
        super().start(timeout_s, attempts=1)
        return self


class WeaviateCluster:
    """``size`` nodes on 127.0.0.1; ``nodes[i].url`` / ``.grpc_port`` reach node i directly."""

    PORTS_PER_NODE = 6  # http, grpc, gossip, data (gossip + 1), raft, raft rpc

    def __init__(self, binary: Path, root: Path, size: int = 3, extra_env: dict[str, str] | None = None) -> None:
        base = free_port_block(self.PORTS_PER_NODE * size)
        names = [f"citebot-node-{i}" for i in range(size)]
        ports = [base + self.PORTS_PER_NODE * i for i in range(size)]
        gossip = ",".join(f"127.0.0.1:{p + 2}" for p in ports)
        raft = ",".join(f"{n}:{p + 4}" for n, p in zip(names, ports))
        self.nodes: list[ClusterNode] = []
        for name, p in zip(names, ports):
            env = (
                server_environment(root / name, p, p + 1)
                | {
                    "CLUSTER_HOSTNAME": name,
                    "CLUSTER_GOSSIP_BIND_PORT": str(p + 2),
                    "CLUSTER_DATA_BIND_PORT": str(p + 3),
                    "CLUSTER_JOIN": gossip,
                    "RAFT_PORT": str(p + 4),
                    "RAFT_INTERNAL_RPC_PORT": str(p + 5),
                    "RAFT_JOIN": raft,
                    "RAFT_BOOTSTRAP_EXPECT": str(size),
                }
                | (extra_env or {})
            )
            self.nodes.append(ClusterNode(binary, root, name, p, env))

    @property
    def weaviate_url(self) -> str:
        """WEAVIATE_URL listing every node (each with its own gRPC port)."""
        return ",".join(f"{n.url}?grpc_port={n.grpc_port}" for n in self.nodes)

    def start(self, timeout_s: float = 120.0) -> WeaviateCluster:
        for node in self.nodes:  # all at once: each waits for the others to bootstrap Raft
            node.data_dir.mkdir(parents=True, exist_ok=True)
        import threading

        errors: list[BaseException] = []

        def run(node: ClusterNode) -> None:
            try:
                node.start(timeout_s)
            except BaseException as error:  # noqa: BLE001 - re-raised below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(n,)) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.stop()
            raise errors[0]
        self.wait_healthy(timeout_s)
        return self

    def nodes_status(self, via: ClusterNode | None = None) -> list[dict]:
        via = via or next(n for n in self.nodes if n.process is not None)
        with urllib.request.urlopen(f"{via.url}/v1/nodes", timeout=5) as r:
            return json.loads(r.read())["nodes"]

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Every node up and seeing all the others as HEALTHY."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                views = [self.nodes_status(n) for n in self.nodes]
                last = [[(s["name"], s["status"]) for s in v] for v in views]
                if all(len(v) == len(self.nodes) and all(s["status"] == "HEALTHY" for s in v) for v in views):
                    return
            except OSError as error:
                last = error
            time.sleep(0.3)
        raise TimeoutError(f"cluster not healthy after {timeout_s}s: {last}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> WeaviateCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
