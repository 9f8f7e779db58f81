"""The Weaviate server: the one pinned version, where its binary lives, how to run and reach it.

* Embedded (default): weaviate-client's Weaviate Embedded starts the real server binary from
  ``<binary_dir>/weaviate-v<ver>-<sha256("v<ver>")>`` (downloading it when it is missing and
  the internet is reachable).
* Where there is no internet but Go is: ``ensure_binary`` builds that same binary from the Go
  module proxy (``go install github.com/weaviate/weaviate/cmd/weaviate-server@v<ver>``) and
  puts it where Embedded looks.

The embedded server's lifecycle (``acquire_embedded`` / ``EmbeddedServer.release`` /
``stop_embedded`` / ``embedded_status``): one server per data directory, shared by every
citebot process that uses that directory, and never outliving them.

* citebot starts the binary itself (not through weaviate-client's Embedded, which checks one
  port, uses three more unchecked, waits 30 s on a server that already exited, and cannot tie
  the server's life to anything). All six ports are picked and verified free; a server that exits
  at start-up is retried on fresh cluster ports at once.
* The server runs under a small watchdog process (``python weaviate_server.py watch``). The
  watchdog is the server's parent; the server gets SIGTERM when the watchdog dies
  (``prctl(PR_SET_PDEATHSIG)`` on Linux), and the watchdog stops the server when no citebot
  process that registered as a client is alive any more (``kill -9`` of the CLI, an OOM kill), or
  after ``linger_s`` seconds without clients. A client registered with ``keep_running`` (a
  ``citebot up``) keeps it until ``stop_embedded``.
* ``<data>.run/`` beside the data directory holds ``server.json`` (pids with their start times,
  ports), ``clients/`` (one file per registered client) and ``lock`` (an flock held while a
  server is checked, started or stopped). A process finds a running server through
  ``server.json`` and adopts it only after checking that the pid is alive, is a Weaviate binary
  serving this data directory, and answers ``/v1/.well-known/ready``; a stale file is removed, a
  Weaviate left on this directory by an older citebot (no watchdog, parent gone) is stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from citebot.errors import WeaviateUnavailable

log = logging.getLogger(__name__)

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


def _port_is_free(port: int) -> bool:
    """Nothing listens on ``port`` (TCP, any interface) and nothing holds it for UDP (gossip)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:  # as servers do: connections in TIME_WAIT do not block a listener
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("", port))
            except OSError:
                return False
    return True


def free_port_block(count: int = 4, attempts: int = 200) -> int:
    """The first of ``count`` consecutive ports that are all free now (Weaviate's gossip, data,
    raft and raft-RPC ports: the data port must be gossip + 1)."""
    for _ in range(attempts):
        base = free_port()
        if base + count < 65536 and all(_port_is_free(base + i) for i in range(count)):
            return base
    raise OSError(f"found no {count} consecutive free ports")


def server_environment(data_dir: str | Path, http_port: int, grpc_port: int) -> dict[str, str]:
    """Environment for a single-node server on loopback; every cluster port is checked free."""
    gossip = free_port_block(4)
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


# ---- the embedded server: one per data directory, shared, never outliving its clients ----------
START_TIMEOUT_S = 120.0  # a large index takes a while to load
WATCH_INTERVAL_S = 0.5
STOP_TIMEOUT_S = 60.0
_LOG_LIMIT = 10 * 1024 * 1024
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class EmbeddedServer:
    """This process's registration as a client of the server serving ``data_path``."""

    data_path: Path
    http_port: int
    grpc_port: int
    pid: int
    watchdog_pid: int
    adopted: bool  # True: another citebot process had started it
    client_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def release(self) -> None:
        """This process no longer uses the server; the watchdog stops it when no client is left."""
        with contextlib.suppress(FileNotFoundError):
            self.client_file.unlink()


def run_dir(data_path: str | Path) -> Path:
    """``<data>.run/``: server.json, clients/, lock and weaviate.log of the server for ``data_path``."""
    path = Path(data_path).resolve()
    return path.with_name(path.name + ".run")


def acquire_embedded(
    data_path: str | Path,
    binary_dir: str | Path,
    http_port: int,
    grpc_port: int,
    *,
    keep_running: bool = False,
    linger_s: float = 0.0,
    timeout_s: float = START_TIMEOUT_S,
) -> EmbeddedServer:
    """Use the Weaviate serving ``data_path``: adopt the one running (on whatever ports it was
    started with) or start one on ``http_port``/``grpc_port``. The caller must ``release()`` it.

    ``linger_s``: a server started here keeps running that long after its last client left
    (later commands adopt it). ``keep_running``: it keeps running until ``stop_embedded``."""
    data = Path(data_path).resolve()
    run = run_dir(data)
    (run / "clients").mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    with _locked(run, timeout_s):
        state = _running_state(run, data, timeout_s)
        if state is None:
            _stop_leftovers(data)
        client_file = _register(run, keep_running)
        try:
            if state is None:
                state = _start(run, data, binary_dir, http_port, grpc_port, linger_s, timeout_s)
                adopted = False
            else:
                adopted = True
                log.info("using the Weaviate already serving %s (pid %s)", data, state["pid"])
        except BaseException:
            client_file.unlink(missing_ok=True)
            raise
    return EmbeddedServer(
        data, state["http_port"], state["grpc_port"], state["pid"], state["watchdog_pid"], adopted, client_file
    )


def embedded_status(data_path: str | Path) -> dict | None:
    """The running server for ``data_path`` (pid, watchdog_pid, http_port, grpc_port; clients: how
    many processes use it; kept: whether ``keep_running`` holds it), or None."""
    data = Path(data_path).resolve()
    run = run_dir(data)
    state = _read_state(run)
    if state is None or not _is_our_weaviate(state["pid"], state.get("pid_started", ""), data):
        return None
    clients = _live_clients(run)
    return {**state, "clients": sum(c.name != "keep" for c in clients), "kept": any(c.name == "keep" for c in clients)}


def stop_embedded(data_path: str | Path, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the server for ``data_path`` now, whoever uses it (``citebot down``). True if one ran."""
    data = Path(data_path).resolve()
    run = run_dir(data)
    state = _read_state(run)
    if state is None:
        return False
    for client in (run / "clients").glob("*"):
        client.unlink(missing_ok=True)
    stopped = False
    if _alive(state["watchdog_pid"], state.get("watchdog_started", "")):
        os.kill(state["watchdog_pid"], signal.SIGTERM)
        stopped = True
    elif _is_our_weaviate(state["pid"], state.get("pid_started", ""), data):
        _terminate(state["pid"], timeout_s)
        (run / "server.json").unlink(missing_ok=True)
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _read_state(run) is not None:
        time.sleep(0.1)
    return stopped


# ---- process identity (Linux /proc; elsewhere only "is the pid alive") --------------------------
def _started(pid: int) -> str:
    """The process's start time (clock ticks since boot): with the pid, an identity that survives
    pid reuse. "" where /proc is missing; None-like "" also when the process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, started: str) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not Path("/proc").is_dir():
        return True
    now = _started(pid)
    if not now:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie holds nothing
        return False
    return not started or now == started


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _serves(pid: int, data: Path) -> bool:
    """``pid`` runs a Weaviate binary whose data directory is ``data``."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return not Path("/proc").is_dir()  # nothing to check against elsewhere
    if not Path(argv0).name.startswith("weaviate"):
        return False
    path = _environ(pid).get("PERSISTENCE_DATA_PATH", "")
    return bool(path) and os.path.realpath(path) == str(data)


def _is_our_weaviate(pid: int, started: str, data: Path) -> bool:
    return _alive(pid, started) and _serves(pid, data)


def _ready(http_port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v1/.well-known/ready", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM (Weaviate flushes and exits), SIGKILL if it is still there after ``timeout_s``."""
    started = _started(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid, started) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid, started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid, started):
            time.sleep(0.05)


# ---- the run directory ---------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(run: Path, timeout_s: float) -> Iterator[None]:
    with open(run / "lock", "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WeaviateUnavailable(
                        f"Another citebot has been starting or stopping the Weaviate for {run.with_suffix('')} "
                        f"for {timeout_s:.0f} s; try again in a minute."
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_state(run: Path) -> dict | None:
    try:
        return json.loads((run / "server.json").read_text())
    except (OSError, ValueError):
        return None


def _write_state(run: Path, state: dict) -> None:
    tmp = run / f"server.json.{os.getpid()}"
    tmp.write_text(json.dumps(state))
    tmp.replace(run / "server.json")


def _register(run: Path, keep_running: bool) -> Path:
    """This process as a client (the file ``release()`` removes); ``keep_running`` also leaves a
    ``keep`` marker that only ``stop_embedded`` removes."""
    if keep_running:
        (run / "clients" / "keep").write_text(json.dumps({"keep": True}))
    client = run / "clients" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    client.write_text(json.dumps({"pid": os.getpid(), "started": _started(os.getpid())}))
    return client


def _live_clients(run: Path) -> list[Path]:
    live = []
    for client in (run / "clients").glob("*"):
        try:
            info = json.loads(client.read_text())
        except (OSError, ValueError):
            continue
        if info.get("keep") or _alive(int(info["pid"]), info.get("started", "")):
            live.append(client)
        else:
            client.unlink(missing_ok=True)
    return live


def _running_state(run: Path, data: Path, timeout_s: float) -> dict | None:
    """The verified running server from server.json, or None (a stale file is removed)."""
    state = _read_state(run)
    if state is None:
        return None
    ours = _is_our_weaviate(state["pid"], state.get("pid_started", ""), data)
    if ours and _alive(state["watchdog_pid"], state.get("watchdog_started", "")):
        if _ready(state["http_port"], min(timeout_s, 30.0)):
            return state
        raise WeaviateUnavailable(
            f"The Weaviate serving {data} (pid {state['pid']}, started by another citebot) does not answer on "
            f"port {state['http_port']}. Stop it (`kill {state['pid']}`) or wait for it, then try again."
        )
    if ours:  # its watchdog is gone (killed where the server could not follow it): stale
        log.warning("stopping the Weaviate left running on %s (pid %s)", data, state["pid"])
        _terminate(state["pid"], STOP_TIMEOUT_S)
    (run / "server.json").unlink(missing_ok=True)
    return None


def _stop_leftovers(data: Path) -> None:
    """A Weaviate on ``data`` that no watchdog owns: left by an older citebot killed hard (stopped
    here), or run by another program that is still alive (refused with a plain message)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or not _serves(int(entry.name), data):
            continue
        pid = int(entry.name)
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            parent_cmd = Path(f"/proc/{parent}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            parent, parent_cmd = 0, ""
        if parent > 1 and "python" in parent_cmd:
            raise WeaviateUnavailable(
                f"Another citebot (pid {parent}: {parent_cmd.strip()[:80]}) is using the data in {data.parent}. "
                "Wait for it to finish or stop it, or set CITEBOT_DATA_DIR to another folder."
            )
        log.warning("stopping a Weaviate left running on %s by a citebot that was killed (pid %s)", data, pid)
        _terminate(pid, STOP_TIMEOUT_S)


def find_binary(binary_dir: str | Path, data: Path, version: str = WEAVIATE_VERSION) -> Path:
    """The pinned binary: already there, else downloaded (weaviate-client's Embedded download),
    else built with Go."""
    target = embedded_binary_path(binary_dir, version)
    if target.exists():
        return target
    try:
        from weaviate.embedded import EmbeddedOptions, EmbeddedV4

        EmbeddedV4(
            EmbeddedOptions(binary_path=str(binary_dir), persistence_data_path=str(data), version=version)
        ).ensure_weaviate_binary_exists()
        if target.exists():
            return target
    except Exception as error:  # noqa: BLE001 - no internet: try Go next
        log.info("could not download Weaviate %s: %s", version, error)
    try:
        return ensure_binary(binary_dir, version)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        raise WeaviateUnavailable(
            f"Weaviate {version} is not at {target}; it could not be downloaded or built ({error})."
        ) from None


def _start(
    run: Path, data: Path, binary_dir: str | Path, http_port: int, grpc_port: int, linger_s: float, timeout_s: float
) -> dict:
    for port, name in ((http_port, "WEAVIATE_EMBEDDED_PORT"), (grpc_port, "WEAVIATE_EMBEDDED_GRPC_PORT")):
        if not _port_is_free(port):
            raise WeaviateUnavailable(
                f"Port {port} ({name}) is in use by another program, so Weaviate cannot start there. "
                f"Set {name} to a free port."
            )
    binary = find_binary(binary_dir, data)
    logfile = run / "weaviate.log"
    if logfile.exists() and logfile.stat().st_size > _LOG_LIMIT:
        logfile.unlink()
    package_root = str(Path(__file__).resolve().parents[1])
    attempts = 3
    for attempt in range(attempts):
        env = {
            **os.environ,
            **server_environment(data, http_port, grpc_port),
            "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p),
        }
        config = {"binary": str(binary), "http_port": http_port, "grpc_port": grpc_port, "linger_s": linger_s}
        with open(logfile, "ab") as out:
            launcher = subprocess.Popen(
                [sys.executable, "-m", "citebot.weaviate_server", "watch", str(run), json.dumps(config)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal goes to citebot, which then releases
            )
        launcher.wait()  # it forks the watchdog (no child of ours left running) and exits
        began = time.monotonic()
        while time.monotonic() - began < timeout_s:
            state = _read_state(run)
            if state and "exited" in state:
                break  # the server exited at start-up (a port taken meanwhile): retry on fresh ports
            if state and _ready(http_port, 0):
                log.info("started Weaviate for %s (pid %s, port %s)", data, state["pid"], http_port)
                return state
            if state and not _alive(state["watchdog_pid"], state["watchdog_started"]):
                raise WeaviateUnavailable(f"Weaviate's watchdog died at start-up; see {logfile}.")
            if state is None and time.monotonic() - began > 30:
                raise WeaviateUnavailable(f"Weaviate's watchdog did not start; see {logfile}.")
            time.sleep(0.1)
        else:
            if state:
                _terminate(state["watchdog_pid"], STOP_TIMEOUT_S)
            raise WeaviateUnavailable(f"Weaviate did not become ready within {timeout_s:.0f} s; see {logfile}.")
        (run / "server.json").unlink(missing_ok=True)
        log.warning("Weaviate exited at start-up (attempt %d of %d); see %s", attempt + 1, attempts, logfile)
    raise WeaviateUnavailable(f"Weaviate exited at start-up {attempts} times; see {logfile}.")


def _die_with_parent() -> None:
    """In the server process before exec (the watchdog is single-threaded, so this is safe)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _watch(run: Path, config: dict) -> int:
    """The watchdog: start the server as its child and stop it when no client is left."""
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    if os.fork() > 0:  # the launcher exits; the watchdog is nobody's child and outlives the starter
        os._exit(0)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    me = os.getpid()
    server = subprocess.Popen(
        [
            config["binary"],
            "--host",
            "127.0.0.1",
            "--port",
            str(config["http_port"]),
            "--scheme",
            "http",
            "--read-timeout=600s",
            "--write-timeout=600s",
        ],
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
    )
    _write_state(
        run,
        {
            "pid": server.pid,
            "pid_started": _started(server.pid),
            "watchdog_pid": me,
            "watchdog_started": _started(me),
            "http_port": config["http_port"],
            "grpc_port": config["grpc_port"],
            "linger_s": config["linger_s"],
        },
    )
    idle_since: float | None = None
    while not stop and server.poll() is None:
        time.sleep(WATCH_INTERVAL_S)
        if _live_clients(run):
            idle_since = None
            continue
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since < config["linger_s"]:
            continue
        with _locked(run, STOP_TIMEOUT_S):  # nobody adopts the server while it stops
            if not _live_clients(run):
                _shutdown(run, server, me)
                return 0
    if server.poll() is not None:  # it exited by itself (at start-up the starter holds the lock)
        state = _read_state(run)
        if state and state.get("watchdog_pid") == me:
            _write_state(run, {**state, "exited": server.returncode})
        return 1
    with _locked(run, STOP_TIMEOUT_S):
        _shutdown(run, server, me)
    return 0


def _shutdown(run: Path, server: subprocess.Popen, me: int) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    state = _read_state(run)
    if state and state.get("watchdog_pid") == me:
        (run / "server.json").unlink(missing_ok=True)


def main() -> None:
    """``python -m citebot.weaviate_server [BINARY_DIR]``: make sure the pinned binary exists.
    (``… watch RUN_DIR CONFIG_JSON`` is the watchdog that ``acquire_embedded`` starts.)"""
    if len(sys.argv) == 4 and sys.argv[1] == "watch":
        sys.exit(_watch(Path(sys.argv[2]), json.loads(sys.argv[3])))
    from citebot.settings import Settings

    binary_dir = sys.argv[1] if len(sys.argv) > 1 else Settings.from_env().weaviate_binary_dir
    print(ensure_binary(binary_dir))


if __name__ == "__main__":
    main()
