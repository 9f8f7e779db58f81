"""The warm half of `citebot up`: one process that keeps Citebot open (Weaviate connection, local
model, Hamilton drivers) and answers `citebot ask` over a Unix socket in the data dir, so a
question costs the query, not the ~2 s of imports and start-up a fresh process spends.

Protocol: one JSON line in ({"settings": fingerprint, "question", "scope", "top_k", "alpha",
"mode"}), one JSON line out ({"answer": dict, "text": formatted} or {"error": message} or
{"stale": true} when the caller's settings differ from the service's: it then answers itself).
The CLI falls back to answering in its own process whenever the service is not there.

``python -m bot.cli_service`` runs it (in the foreground; `citebot up` starts it detached).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import socketserver
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from citebot import logs
from citebot.settings import Settings

START_TIMEOUT_S = 120.0
REPLY_TIMEOUT_S = 300.0


def socket_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / "citebot-cli.sock"


def _pid_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / "citebot-cli.pid"


def fingerprint(settings: Settings) -> str:
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:16]


def ask(settings: Settings, request: dict[str, Any]) -> dict[str, Any] | None:
    """The service's reply, or None when there is no service for these settings (answer locally)."""
    path = socket_path(settings)
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(REPLY_TIMEOUT_S)
            s.connect(str(path))
            s.sendall((json.dumps({**request, "settings": fingerprint(settings)}) + "\n").encode())
            reply = json.loads(s.makefile("rb").readline() or b"null")
    except (OSError, ValueError):
        return None
    return None if not isinstance(reply, dict) or reply.get("stale") else reply


def start(settings: Settings) -> int:
    """Start the service detached (with this process's environment) and wait until it answers."""
    from bot.weaviate_daemon import running

    current = _running_pid(settings)
    if current:
        return current
    log = open(Path(settings.data_dir) / "citebot-cli.log", "ab")  # noqa: SIM115 - handed to the child
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    with log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli_service"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(settings):
        if process.poll() is not None or time.monotonic() > deadline or running(settings) is None:
            process.kill()
            raise RuntimeError(f"the CLI service did not start; see {Path(settings.data_dir) / 'citebot-cli.log'}")
        time.sleep(0.1)
    return process.pid


def stop(settings: Settings) -> int | None:
    pid = _running_pid(settings)
    _pid_path(settings).unlink(missing_ok=True)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
    socket_path(settings).unlink(missing_ok=True)
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _running_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _answers(settings: Settings) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(str(socket_path(settings)))
            return True
    except OSError:
        return False


def serve() -> None:
    from bot.cli import _open, format_answer
    from citebot.domain import Scope
    from citebot.errors import CitebotError

    logs.configure(logging.WARNING)  # as the CLI it stands in for
    settings = Settings.from_env()
    mine = fingerprint(settings)
    path = socket_path(settings)
    with _open(settings) as bot:

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    request = json.loads(self.rfile.readline())
                    if request.get("settings") != mine:
                        reply: dict[str, Any] = {"stale": True}
                    else:
                        workspace, _, channel = request["scope"].partition("/")
                        answer = bot.ask(
                            request["question"],
                            Scope(workspace, channel),
                            top_k=request.get("top_k"),
                            alpha=request.get("alpha"),
                            mode=request.get("mode", "answer"),
                        )
                        reply = {"answer": answer.to_dict(), "text": format_answer(answer)}
                except CitebotError as error:
                    reply = {"error": str(error)}
                except Exception as error:  # noqa: BLE001 - one line back to the terminal
                    reply = {"error": f"{type(error).__name__}: {error}"}
                self.wfile.write((json.dumps(reply, ensure_ascii=False) + "\n").encode())

        path.unlink(missing_ok=True)
        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds: the socket goes, Citebot closes
        _pid_path(settings).write_text(str(os.getpid()))
        try:
            server.serve_forever()
        finally:
            server.server_close()
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    serve()
