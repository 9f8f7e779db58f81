"""A standalone Weaviate server process on loopback ports, for tests and benchmarks (crashes,
restarts, clusters). Product code reaches Weaviate through ``citebot.store.connect``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from citebot.weaviate_server import free_port, server_environment


class WeaviateProcess:
    """A standalone Weaviate server process on loopback ports (tests, benchmarks, faults)."""

    def __init__(
        self,
        binary: Path,
        data_dir: str | Path,
        http_port: int | None = None,
        grpc_port: int | None = None,
        log_path: str | Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / "weaviate.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._extra_env = env or {}
        self._env = server_environment(self.data_dir, self.http_port, self.grpc_port) | self._extra_env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout_s: float = 90.0, attempts: int = 3) -> WeaviateProcess:
        """Start and wait until ready. The cluster ports are picked free but could be taken by
        the time the server binds them: a server that exits at once is retried on new ones."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            log = open(self.log_path, "ab")
            self.process = subprocess.Popen(
                [str(self.binary), "--host", "127.0.0.1", "--port", str(self.http_port), "--scheme", "http"],
                env={**os.environ, **self._env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            try:
                self.wait_ready(timeout_s)
                return self
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self._env = server_environment(self.data_dir, self.http_port, self.grpc_port) | self._extra_env
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Weaviate exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/.well-known/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"Weaviate not ready after {timeout_s}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> WeaviateProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
