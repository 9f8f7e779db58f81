"""The Weaviate server: the one pinned version, where its binary lives, how to run and reach it.

* Embedded (default): weaviate-client's Weaviate Embedded starts the real server binary from
  ``<binary_dir>/weaviate-v<ver>-<sha256("v<ver>")>`` (downloading it when it is missing and
  the internet is reachable).
* Where there is no internet but Go is: ``ensure_binary`` builds that same binary from the Go
  module proxy (``go install github.com/weaviate/weaviate/cmd/weaviate-server@v<ver>``) and
  puts it where Embedded looks.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# The one place the server version is pinned (docker-compose.yaml uses the same; a test checks).
WEAVIATE_VERSION = "1.38.14"
GO_MODULE = "github.com/weaviate/weaviate/cmd/weaviate-server"


def embedded_binary_path(binary_dir: str | Path, version: str = WEAVIATE_VERSION) -> Path:
    tag = f"v{version}"
    return Path(binary_dir) / f"weaviate-{tag}-{hashlib.sha256(tag.encode()).hexdigest()}"


def ensure_binary(binary_dir: str | Path, version: str = WEAVIATE_VERSION, quiet: bool = False) -> Path:
    """Return the server binary, building it with ``go install`` when it is missing."""
    target = embedded_binary_path(binary_dir, version)
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            f"Weaviate {version} is not at {target} and Go is not installed to build it. "
            "With internet access Weaviate Embedded downloads it by itself."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="weaviate-build-") as gobin:
        if not quiet:
            print(f"Building Weaviate {version} with go install (a few minutes, once)...", file=sys.stderr)
        env = {**os.environ, "GOBIN": gobin, "GOFLAGS": "-buildvcs=false"}
        subprocess.run([go, "install", f"{GO_MODULE}@v{version}"], env=env, check=True)
        built = Path(gobin) / "weaviate-server"
        tmp = target.with_suffix(".partial")
        shutil.copy2(built, tmp)
        tmp.chmod(0o755)
        tmp.rename(target)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_environment(data_dir: str | Path, http_port: int, grpc_port: int) -> dict[str, str]:
    """Environment for a single-node server on loopback (also what Embedded is given)."""
    gossip = free_port()
    return {
        "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
        "PERSISTENCE_DATA_PATH": str(data_dir),
        "DEFAULT_VECTORIZER_MODULE": "none",
        "ENABLE_MODULES": "",
        "DISABLE_TELEMETRY": "true",
        "LOG_LEVEL": os.environ.get("WEAVIATE_LOG_LEVEL", "error"),
        "QUERY_DEFAULTS_LIMIT": "25",
        "GRPC_PORT": str(grpc_port),
        "CLUSTER_IN_LOCALHOST": "true",
        "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
        "CLUSTER_HOSTNAME": "citebot-node-1",
        "CLUSTER_GOSSIP_BIND_PORT": str(gossip),
        "CLUSTER_DATA_BIND_PORT": str(gossip + 1),
        "RAFT_PORT": str(gossip + 2),
        "RAFT_INTERNAL_RPC_PORT": str(gossip + 3),
        "RAFT_JOIN": f"citebot-node-1:{gossip + 2}",
        "RAFT_BOOTSTRAP_EXPECT": "1",
        "RAFT_TIMEOUTS_MULTIPLIER": "1",  # one node: elect itself in ~1 s, not ~5 s
        "GO_PROFILING_DISABLE": "true",
        "GOMEMLIMIT": os.environ.get("GOMEMLIMIT", "2GiB"),
    }


def main() -> None:
    """``python -m citebot.weaviate_server [BINARY_DIR]``: make sure the pinned binary exists."""
    from citebot.settings import Settings

    binary_dir = sys.argv[1] if len(sys.argv) > 1 else Settings.from_env().weaviate_binary_dir
    print(ensure_binary(binary_dir))


if __name__ == "__main__":
    main()
