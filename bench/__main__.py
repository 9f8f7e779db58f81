"""``python -m bench``: every benchmark, one table on stdout, the details in bench/results.json.

    python -m bench                  # everything (< 15 minutes on 2 cores)
    python -m bench --quick          # smoke run: fewer files, queries and configurations
    python -m bench --only ingest    # one section (repeatable: --only ingest --only llm_cost)
    python -m bench --only retrieval --big   # with the 1,000,000-chunk point (built once, reused)

Sections run in this order: ingest, retrieval, llm_cost, memory, quality, acks, embedder, cli, isolation. A section that
fails is reported as such in the table; the others still run. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

SECTIONS = ("ingest", "retrieval", "llm_cost", "memory", "quality", "acks", "embedder", "cli", "isolation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (minutes, not representative)")
    parser.add_argument(
        "--big",
        action="store_true",
        help="retrieval: add the 1,000,000-chunk point (built once under $CITEBOT_BENCH_DATA, then reused)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section ({', '.join(SECTIONS)}); may be repeated",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).with_name("results.json"),
        help="where to write the JSON results (default: bench/results.json)",
    )
    args = parser.parse_args(argv)

    from citebot import logs

    logs.configure(logging.WARNING)  # as the CLI: quiet libraries, no Hamilton tracebacks for bad input
    from bench import report
    from bench.common import BenchEnv, log

    wanted = [s for s in SECTIONS if not args.only or s in args.only]
    started = time.perf_counter()
    results: dict = {
        "meta": {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "big": args.big,
            "sections": wanted,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {_cores()} cores, {_memory_gib()} GiB",
            "load_average_at_start": _load(),
        }
    }
    env = BenchEnv.start(args.quick, args.big)
    try:
        for name in wanted:
            log(f"=== {name} ===")
            began = time.perf_counter()
            try:
                module = __import__(f"bench.{name}", fromlist=["run"])
                results[name] = module.run(env)
            except Exception as error:
                log(f"{name} FAILED: {type(error).__name__}: {error}")
                traceback.print_exc(file=sys.stderr)
                results[name] = {"error": f"{type(error).__name__}: {error}"}
            results[name]["section_seconds"] = round(time.perf_counter() - began, 1)
            log(f"{name} took {results[name]['section_seconds']}s")
    finally:
        env.stop()
    results["meta"]["load_average_at_end"] = _load()
    results["meta"]["total_seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(report.table(results))
    log(f"wrote {args.out} ({results['meta']['total_seconds']}s in total)")
    return 1 if any("error" in results[s] for s in wanted) else 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


def _memory_gib() -> int:
    try:
        with open("/proc/meminfo") as f:
            return round(int(f.readline().split()[1]) / 2**20)
    except OSError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
