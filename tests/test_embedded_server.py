"""The embedded Weaviate's life as a CLI user sees it (issue 17, item 4): real `python -m bot.cli`
processes, the real server binary, a fresh data folder per test.

* ``kill -9`` of a command leaves no server behind, and the next command works at once;
* a second command while one runs (even configured with other ports) uses the same server;
* a server left running on the data folder by an older citebot is stopped, not fought;
* a port taken by another program is one plain line, not a 30 s wait and a traceback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from citebot.settings import Settings
from citebot.weaviate_server import ensure_binary, free_port, server_environment
from tests.paths import PDFS


def _env(data: Path, **changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_", "CITEBOT_", "WEAVIATE_"))}
    env.update(
        CITEBOT_DATA_DIR=str(data),
        WEAVIATE_EMBEDDED_PORT=str(free_port()),
        WEAVIATE_EMBEDDED_GRPC_PORT=str(free_port()),
        WEAVIATE_BINARY_DIR=Settings.from_env().weaviate_binary_dir,
    )
    env.update(changes)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=timeout)


def start_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def weaviates_serving(data: Path) -> list[int]:
    """Pids of Weaviate servers whose data directory is ``data``/weaviate (whoever started them)."""
    wanted = os.path.realpath(data / "weaviate")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
            environ = (entry / "environ").read_bytes().decode(errors="replace").split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if Path(argv0).name.startswith("weaviate") and state != "Z" and f"PERSISTENCE_DATA_PATH={wanted}" in environ:
            found.append(int(entry.name))
    return found


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {what}")
        time.sleep(0.1)


def ready(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/.well-known/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _binary() -> None:
    ensure_binary(Settings.from_env().weaviate_binary_dir)


def test_kill_9_of_a_command_leaves_no_server_and_the_next_command_works(tmp_path: Path) -> None:
    env = _env(tmp_path)
    ingest = start_cli(env, "ingest", str(PDFS / "1706.03762.pdf"))
    try:
        wait_until(lambda: weaviates_serving(tmp_path) or ingest.poll() is not None, 90, "the ingest started Weaviate")
        assert ingest.poll() is None, ingest.communicate()
        wait_until(lambda: ready(int(env["WEAVIATE_EMBEDDED_PORT"])), 90, "Weaviate is ready")
        time.sleep(1.0)  # the ingest is under way
    finally:
        ingest.send_signal(signal.SIGKILL)
        ingest.wait()

    started = time.monotonic()
    docs = cli(env, "docs")
    assert docs.returncode == 0, docs.stderr
    assert "No documents here yet" in docs.stdout
    assert "Traceback" not in docs.stderr and "connect_to_local" not in docs.stderr
    assert time.monotonic() - started < 60

    # Nothing keeps running once no citebot does (before: the killed command's server stayed for good).
    wait_until(lambda: not weaviates_serving(tmp_path), 20, "no Weaviate left on the data folder")


def test_a_second_command_while_one_runs_uses_the_same_server(tmp_path: Path) -> None:
    env = _env(tmp_path)
    chat = start_cli(env, "chat")
    try:
        assert "0 document(s) indexed here" in chat.stdout.readline()
        [server] = weaviates_serving(tmp_path)

        # Another terminal, even configured with other ports, adds a paper to the same data.
        other_ports = _env(tmp_path)
        added = cli(other_ports, "ingest", str(PDFS / "1111.2011.pdf"))
        assert added.returncode == 0, added.stderr
        assert "Quantum Criticality for Extended Nodes on a Bethe Lattice" in added.stdout
        assert weaviates_serving(tmp_path) == [server]  # adopted, not a second server on the same data

        # The chat sees it (one data folder, one server).
        chat.stdin.write("What is the critical point of the Bethe lattice model in the large connectivity limit?\n\n")
        chat.stdin.flush()
        out, err = chat.communicate(timeout=120)
        assert chat.returncode == 0, err
        assert "Quantum Criticality for Extended Nodes on a Bethe Lattice" in out
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
    wait_until(lambda: not weaviates_serving(tmp_path), 20, "the server stops after the last command")


def test_a_server_left_by_an_older_citebot_is_stopped_not_fought(tmp_path: Path) -> None:
    """Before this fix a hard-killed CLI left Weaviate running with no parent; every later command
    failed in ~2 s with "use weaviate.connect_to_local(...)" until someone killed it by hand."""
    env = _env(tmp_path)
    http, grpc = int(env["WEAVIATE_EMBEDDED_PORT"]), int(env["WEAVIATE_EMBEDDED_GRPC_PORT"])
    binary = ensure_binary(env["WEAVIATE_BINARY_DIR"])
    data = tmp_path / "weaviate"
    data.mkdir()
    orphan_env = {**os.environ, **server_environment(data, http, grpc)}
    # started in the background by a shell that exits at once: its parent is gone, as after a kill -9
    orphan_command = f'"{binary}" --host 127.0.0.1 --port {http} --scheme http >/dev/null 2>&1 &'
    subprocess.run(["sh", "-c", orphan_command], env=orphan_env, check=True)
    wait_until(lambda: ready(http), 60, "the orphan is serving")
    [orphan] = weaviates_serving(tmp_path)

    docs = cli(env, "docs")
    assert docs.returncode == 0, docs.stderr
    assert "No documents here yet" in docs.stdout
    assert orphan not in weaviates_serving(tmp_path)
    wait_until(lambda: not weaviates_serving(tmp_path), 20, "no Weaviate left on the data folder")


def test_a_port_taken_by_another_program_is_one_plain_line(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        started = time.monotonic()
        result = cli(_env(tmp_path, WEAVIATE_EMBEDDED_PORT=str(port)), "docs")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"citebot: Port {port} (WEAVIATE_EMBEDDED_PORT) is in use by another program, so Weaviate cannot start there. "
        "Set WEAVIATE_EMBEDDED_PORT to a free port."
    )
    assert time.monotonic() - started < 30
    assert not weaviates_serving(tmp_path)


def test_the_building_block_for_citebot_up_and_down(tmp_path: Path) -> None:
    """``keep_running`` (a `citebot up`) keeps the server after its process releases it, later users
    adopt it in milliseconds, ``stop_embedded`` (a `citebot down`) stops it; ``linger_s`` keeps an
    unused server that long."""
    from citebot.weaviate_server import acquire_embedded, embedded_status, stop_embedded

    data, binaries = tmp_path / "weaviate", Settings.from_env().weaviate_binary_dir
    up = acquire_embedded(data, binaries, free_port(), free_port(), keep_running=True)
    up.release()
    time.sleep(1.5)  # the watchdog looks every 0.5 s
    assert embedded_status(data) is not None
    started = time.monotonic()
    later = acquire_embedded(data, binaries, free_port(), free_port())  # other ports configured: adopted anyway
    assert later.adopted and later.http_port == up.http_port and time.monotonic() - started < 1.0
    later.release()
    assert stop_embedded(data) and embedded_status(data) is None and not weaviates_serving(tmp_path)

    lingering = acquire_embedded(data, binaries, free_port(), free_port(), linger_s=3.0)
    lingering.release()
    time.sleep(1.5)
    assert embedded_status(data) is not None
    wait_until(lambda: not weaviates_serving(tmp_path), 15, "the server stops after lingering")
