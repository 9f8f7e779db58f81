"""Section: how long `citebot ask` takes from a terminal, as a person runs it (a new process each
time, offline defaults, Weaviate Embedded on this data dir): cold (the command starts Weaviate
and stops it again) and warm (after `citebot up`, the command uses the running server).
Target: warm ≤ 2 s."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

from bench.common import PDFS, REPO, BenchEnv, log
from citebot.weaviate_server import free_port

QUESTION = "What is the critical point of the Bethe lattice model in the large connectivity limit?"
TARGET_S = 2.0


def run(env: BenchEnv) -> dict[str, Any]:
    settings = replace(
        env.base,
        data_dir=str(env.root / "cli"),
        weaviate_url="",
        weaviate_embedded_port=free_port(),
        weaviate_embedded_grpc_port=free_port(),
        collection_prefix="BenchCli",
    )
    child_env = env.env_vars(settings)
    child_env["PYTHONPATH"] = str(REPO)

    def citebot(*args: str) -> float:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", *args], env=child_env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"citebot {' '.join(args)}: {done.stderr.strip()[-300:]}")
        return time.perf_counter() - began

    paper = next(p for p in PDFS if p.stem == "1111.2011")
    citebot("ingest", str(paper))  # also builds the local model once
    cold = [citebot("ask", QUESTION) for _ in range(2)]
    citebot("up")
    try:
        warm = [citebot("ask", QUESTION) for _ in range(2 if env.quick else 4)]
    finally:
        citebot("down")
    out = {
        "cold_ask_s": [round(x, 2) for x in cold],
        "warm_ask_s": [round(x, 2) for x in warm],
        "cold_median_s": round(statistics.median(cold), 2),
        "warm_median_s": round(statistics.median(warm), 2),
    }
    log(f"  cli: {out}")
    return out
