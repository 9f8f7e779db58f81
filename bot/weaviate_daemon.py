"""`citebot up` / `citebot down`: one long-lived Weaviate Embedded server for the CLI.

Without it every CLI command starts the server and stops it again (seconds each time). `up` starts
the same pinned binary, with the same environment Weaviate Embedded would give it, on the
configured embedded ports and data dir, detached from the terminal; it records the process in
``<data dir>/weaviate-server.json``. Later commands connect through Weaviate Embedded as usual,
which finds the server listening and uses it instead of starting one (weaviate-client's
``ensure_running``); `down` stops it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from citebot.errors import CitebotError
from citebot.settings import Settings
from citebot.weaviate_server import ensure_binary, server_environment

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Daemon:
    pid: int
    port: int
    grpc_port: int
    data_path: str


def _record(settings: Settings) -> Path:
    return Path(settings.data_dir) / "weaviate-server.json"


def _data_path(settings: Settings) -> str:
    return str(settings.data_dir) + "/weaviate"  # where Weaviate Embedded keeps it (citebot.store.connect)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/v1/.well-known/ready", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def running(settings: Settings) -> Daemon | None:
    """The server `citebot up` started for this data dir, if it still runs."""
    try:
        daemon = Daemon(**json.loads(_record(settings).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return daemon if _alive(daemon.pid) and _listening(daemon.port) else None


def up(settings: Settings) -> tuple[Daemon, bool]:
    """Start the server (or find it running). Returns it and whether it was started now."""
    if settings.weaviate_url:
        raise CitebotError(f"WEAVIATE_URL is set ({settings.weaviate_url}): citebot uses that server; nothing to start.")
    current = running(settings)
    if current is not None:
        return current, False
    port, grpc_port = settings.weaviate_embedded_port, settings.weaviate_embedded_grpc_port
    for taken in (p for p in (port, grpc_port) if _listening(p)):
        raise CitebotError(
            f"port {taken} is already in use by another process; stop it, or set WEAVIATE_EMBEDDED_PORT / "
            "WEAVIATE_EMBEDDED_GRPC_PORT to free ports."
        )
    binary = ensure_binary(settings.weaviate_binary_dir)
    data_path = _data_path(settings)
    Path(data_path).mkdir(parents=True, exist_ok=True)
    log = open(Path(settings.data_dir) / "weaviate-server.log", "ab")  # noqa: SIM115 - handed to the child
    with log:
        process = subprocess.Popen(
            [str(binary), "--host", HOST, "--port", str(port), "--scheme", "http"],
            env={**os.environ, **server_environment(data_path, port, grpc_port)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the terminal and Ctrl-C in it
        )
    daemon = Daemon(process.pid, port, grpc_port, data_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (_ready(port) and _listening(grpc_port)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise CitebotError(
                f"Weaviate did not start (see {Path(settings.data_dir) / 'weaviate-server.log'}); "
                "`citebot doctor` checks the set-up."
            )
        time.sleep(0.1)
    tmp = _record(settings).with_suffix(".tmp")
    tmp.write_text(json.dumps(daemon.__dict__))
    tmp.replace(_record(settings))
    return daemon, True


def down(settings: Settings) -> Daemon | None:
    """Stop the server `citebot up` started (SIGTERM: Weaviate flushes and exits). None if none ran."""
    daemon = running(settings)
    _record(settings).unlink(missing_ok=True)
    if daemon is None:
        return None
    os.kill(daemon.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(daemon.pid) and time.monotonic() < deadline:
        try:  # our child only when `up` and `down` run in one process (tests); else init reaps it
            os.waitpid(daemon.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    if _alive(daemon.pid):
        os.kill(daemon.pid, signal.SIGKILL)
    return daemon
