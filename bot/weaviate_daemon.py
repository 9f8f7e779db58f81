"""`citebot up` / `citebot down`: one long-lived Weaviate Embedded server for the CLI.

Without it every CLI command starts the server and stops it again (seconds each time). `up` asks
``citebot.weaviate_server`` for the data dir's server with ``keep_running`` (it starts it, or adopts
the one running) so it stays after `up` exits; later commands use it (``running`` gives its ports);
`down` stops it. The server's state and log are in ``<data dir>/weaviate.run/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from citebot.errors import CitebotError
from citebot.settings import Settings
from citebot.weaviate_server import acquire_embedded, embedded_status, stop_embedded

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Daemon:
    pid: int
    port: int
    grpc_port: int
    data_path: str


def _data_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / "weaviate"  # where citebot.store.connect keeps it


def running(settings: Settings) -> Daemon | None:
    """The server `citebot up` keeps for this data dir, if it runs."""
    status = embedded_status(_data_path(settings))
    if status is None or not status["kept"]:
        return None
    return Daemon(status["pid"], status["http_port"], status["grpc_port"], str(_data_path(settings)))


def up(settings: Settings) -> tuple[Daemon, bool]:
    """Keep the server running (start it, or keep the one running). Returns it and whether it was started now."""
    if settings.weaviate_url:
        raise CitebotError(f"WEAVIATE_URL is set ({settings.weaviate_url}): citebot uses that server; nothing to start.")
    current = running(settings)
    if current is not None:
        return current, False
    server = acquire_embedded(
        _data_path(settings),
        settings.weaviate_binary_dir,
        settings.weaviate_embedded_port,
        settings.weaviate_embedded_grpc_port,
        keep_running=True,
    )
    server.release()  # the keep marker holds it until `down`
    return Daemon(server.pid, server.http_port, server.grpc_port, str(server.data_path)), not server.adopted


def down(settings: Settings) -> Daemon | None:
    """Stop the server `citebot up` kept (SIGTERM: Weaviate flushes and exits). None if none ran."""
    daemon = running(settings)
    if daemon is None:
        return None
    stop_embedded(_data_path(settings))
    return daemon
