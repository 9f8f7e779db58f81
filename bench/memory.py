"""Section 5: memory of the bot process: at idle, and at peak while it ingests the 352-page book.

The process is a fresh ``python -m bench.memory_child``: it builds ``Citebot(Settings.from_env())``
exactly as the bot does at start-up (Weaviate client, embedder, chat client), warms the parsing
pool, then waits (idle), ingests, and waits again (idle after ingest). This process samples
``/proc/<pid>/status`` (VmRSS, VmHWM) of the child and, separately, of each of its descendants
(the forkserver and the parsing workers) every 20 ms. The main process's peak is its own VmHWM
(exact, kernel-maintained); the workers' figure is the largest sum of their sampled RSS.

The same child run supplies section 2's book ingest figures, so the book is embedded once per
embedder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import BOOK, BOOK_SCOPE, REPO, BenchEnv, log

IDLE_S = 3.0


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])  # kB
    except OSError:
        pass
    return out


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and of its children it has reaped; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / _TICK


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and all its descendants (those alive and those reaped)."""
    return cpu_s(pid) + sum(cpu_s(child) for child in _descendants(pid))


def cpu_snapshot(env: BenchEnv, bot_pid: int) -> dict[str, float]:
    """CPU seconds so far of the bot process alone, of its parse workers (its other descendants,
    the servers left out when they are its children), of Weaviate and of the embedding stand-in."""
    servers = {env.weaviate.process.pid, env.standin_pid}  # type: ignore[union-attr]
    server_trees = servers | {d for pid in servers for d in _descendants(pid)}
    with open(f"/proc/{bot_pid}/stat") as f:
        own = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13]) / _TICK
    workers = cpu_s(bot_pid) - own + sum(cpu_s(d) for d in _descendants(bot_pid) if d not in server_trees)
    return {
        "parse workers": workers,
        "bot": own,
        "weaviate": tree_cpu_s(env.weaviate.process.pid),  # type: ignore[union-attr]
        "stand-in": tree_cpu_s(env.standin_pid),
    }


def cpu_split(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent between two snapshots, per participant."""
    return {k: round(after[k] - before[k], 2) for k in before}


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.phase = "start"
        self.samples: list[tuple[str, int, int]] = []  # phase, main RSS kB, workers RSS kB
        self.worker_hwm: dict[int, int] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        children: list[int] = []
        n = 0
        while not self.stopped.is_set():
            if n % 25 == 0:  # walking /proc is the expensive part: find new workers every ~0.5 s
                children = _descendants(self.pid)
            n += 1
            main = _status(self.pid).get("VmRSS", 0)
            workers = 0
            for child in children:
                st = _status(child)
                workers += st.get("VmRSS", 0)
                self.worker_hwm[child] = max(self.worker_hwm.get(child, 0), st.get("VmHWM", 0))
            self.samples.append((self.phase, main, workers))
            self.stopped.wait(0.02)


def ingest_in_child(env: BenchEnv, settings: Any, path: Path) -> dict[str, Any]:
    """Ingest ``path`` in a fresh bot-like process; its IngestResult plus memory figures."""
    child_env = env.env_vars(settings)
    child_env["PYTHONPATH"] = str(REPO) + os.pathsep + child_env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.memory_child", str(path), BOOK_SCOPE.key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env,
        cwd=REPO,
    )
    assert proc.stdin and proc.stdout
    sampler = Sampler(proc.pid)
    sampler.start()
    result: dict[str, Any] = {}
    try:
        for line in proc.stdout:
            tag, _, payload = line.strip().partition(" ")
            if tag == "idle":
                sampler.phase = "idle"
            elif tag == "ingest":
                idle_hwm = _status(proc.pid).get("VmHWM", 0)
                sampler.phase = "ingest"
                cpu_before = cpu_snapshot(env, proc.pid)
            elif tag == "done":
                cpu = cpu_split(cpu_before, cpu_snapshot(env, proc.pid))
                result = json.loads(payload)
                sampler.phase = "after"
                time.sleep(IDLE_S)
                final = _status(proc.pid)
                workers_hwm = {p: _status(p).get("VmHWM", 0) for p in _descendants(proc.pid)}
                proc.stdin.write("exit\n")
                proc.stdin.flush()
                break
        proc.stdout.close()
        proc.wait(timeout=60)
    finally:
        sampler.stopped.set()
        sampler.join()
        if proc.poll() is None:
            proc.kill()
    if not result:
        raise RuntimeError(f"the ingest child exited with {proc.returncode} without a result")

    def mb(kb: float) -> float:
        return round(kb / 1024, 1)

    def phase(name: str, i: int) -> list[int]:
        return [s[i] for s in sampler.samples if s[0] == name]

    for pid, hwm in workers_hwm.items():
        sampler.worker_hwm[pid] = max(sampler.worker_hwm.get(pid, 0), hwm)
    idle, after = phase("idle", 1), phase("after", 1)
    return {
        "ingest": result,
        "cpu": cpu,
        "memory": {
            "embedder": settings.embedding_backend if not settings.openai_api_key else "openai-standin",
            "main_idle_mb": mb(sum(idle) / len(idle)) if idle else None,
            "main_idle_hwm_mb": mb(idle_hwm),
            "main_peak_mb": mb(final.get("VmHWM", 0)),
            "main_after_ingest_mb": mb(sum(after) / len(after)) if after else None,
            "workers_idle_mb": mb(max(phase("idle", 2), default=0)),
            "workers_peak_sum_mb": mb(max(phase("ingest", 2), default=0)),
            "worker_processes": len(sampler.worker_hwm),
            "worker_peak_each_mb": sorted((mb(v) for v in sampler.worker_hwm.values()), reverse=True),
            "samples": len(sampler.samples),
        },
    }


def run(env: BenchEnv) -> dict[str, Any]:
    out: dict[str, Any] = dict(getattr(env, "memory_runs", {}))
    wanted = ["standin"] if env.quick else ["minilm", "standin"]
    for embedder in wanted:
        if embedder not in out:
            settings = env.settings(env.prefix(f"Memory{embedder.title()}"), embedder)
            log(f"memory: ingesting the book in a fresh process ({embedder})")
            out[embedder] = ingest_in_child(env, settings, BOOK)["memory"]
        log(f"  {embedder}: {out[embedder]}")
    return out
