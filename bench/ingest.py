"""Section 2: ingestion throughput, against pypdf's plain single-threaded extraction of the same
files measured in the same run.

Two embedders: the OpenAI stand-in (in its own process, as the real API is remote) and the
offline MiniLM model. Each configuration gets a fresh collection prefix, so every document is
really parsed, chunked, embedded and stored. The nine papers go into PAPERS_SCOPE (later
sections reuse that collection), the book into BOOK_SCOPE.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

from bench.common import BOOK, PAPERS_SCOPE, BenchEnv, log, provenance

CORES = os.cpu_count() or 1

# Seconds per step, summed over documents. Parsing and chunking run in the background while
# embedding and storing go on ("read"); "wait" is how long embedding waited for chunks.
SPLIT = {
    "overview": "pdf_document",
    "read": "read_inner",
    "wait": "wait_inner",
    "embed": "embed_inner",
    "store": "store_inner",
    "embed+store": "stored_document",
}


def pypdf_pages_per_s(paths: list[Path]) -> dict[str, Any]:
    """pypdf's plain extraction: PdfReader(...).pages[i].extract_text() for every page, one thread."""
    from pypdf import PdfReader

    pages = 0
    began, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        reader = PdfReader(io.BytesIO(path.read_bytes()))
        for page in reader.pages:
            page.extract_text()
            pages += 1
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"pages": pages, "seconds": round(seconds, 3), "cpu_s": round(cpu, 3), "pages_per_s": round(pages / seconds, 2)}


def _summary(
    pages: int, chunks: int, seconds: float, split: dict[str, float], files: int, cpu: dict[str, float]
) -> dict[str, Any]:
    return {
        "files": files,
        "pages": pages,
        "chunks": chunks,
        "seconds": round(seconds, 3),
        "pages_per_s": round(pages / seconds, 2),
        "chunks_per_s": round(chunks / seconds, 2),
        "split_s": {k: round(v, 3) for k, v in split.items()},
        # CPU seconds each participant spent meanwhile (the machine's other jobs not included)
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
    }


def _add(totals: dict[str, float], timings: dict[str, float]) -> None:
    for name, node in SPLIT.items():
        totals[name] += timings.get(node, 0.0)


def _papers(env: BenchEnv, settings: Any, papers: list[Path]) -> dict[str, Any]:
    """The papers one after another in one Citebot (as the bot ingests them), this process."""
    from bench.memory import cpu_snapshot, cpu_split
    from dataflows.app import Citebot

    totals = {name: 0.0 for name in SPLIT}
    pages = chunks = 0
    seconds = 0.0
    with Citebot(settings) as bot:
        bot._parse_pool().start_workers()  # as a bot that has run for a while (and as the book's run)
        before = cpu_snapshot(env, os.getpid())
        for path in papers:
            result = bot.ingest_pdf(path.read_bytes(), provenance(path, PAPERS_SCOPE))
            assert not result.already_present, f"{path.name} was recognised, not ingested"
            pages, chunks, seconds = pages + result.document.pages, chunks + result.document.chunks, seconds + result.seconds
            _add(totals, result.timings)
        cpu = cpu_split(before, cpu_snapshot(env, os.getpid()))
    return _summary(pages, chunks, seconds, totals, len(papers), cpu)


def _book(env: BenchEnv, settings: Any, embedder: str) -> dict[str, Any]:
    """The book in a fresh bot-like process (bench.memory samples its memory meanwhile)."""
    from bench.memory import ingest_in_child

    run = ingest_in_child(env, settings, BOOK)
    env.memory_runs[embedder] = run["memory"]
    r = run["ingest"]
    assert not r["already_present"]
    totals = {name: 0.0 for name in SPLIT}
    _add(totals, r["timings"])
    return _summary(r["pages"], r["chunks"], r["seconds"], totals, 1, run["cpu"])


def run(env: BenchEnv) -> dict[str, Any]:
    papers = env.papers()
    out: dict[str, Any] = {"pypdf": {}, "citebot": {}}
    # MiniLM on the book takes minutes; --quick measures the book with the stand-in only.
    configs = [("standin", True), ("minilm", not env.quick)]
    for embedder, with_book in configs:
        prefix = env.prefix(f"Ingest{embedder.title()}")
        settings = env.settings(prefix, embedder)
        # pypdf's baseline right before each configuration, so both see the same machine load.
        log(f"ingest: pypdf single-threaded baseline, then citebot with the {embedder} embedder ({prefix})")
        base = {"papers": pypdf_pages_per_s(papers), "book": pypdf_pages_per_s([BOOK])}
        base["all"] = {
            "pages": base["papers"]["pages"] + base["book"]["pages"],
            "seconds": round(base["papers"]["seconds"] + base["book"]["seconds"], 3),
            "cpu_s": round(base["papers"]["cpu_s"] + base["book"]["cpu_s"], 3),
        }
        base["all"]["pages_per_s"] = round(base["all"]["pages"] / base["all"]["seconds"], 2)
        out["pypdf"][embedder] = base
        result = {"papers": _papers(env, settings, papers)}
        env.ingested[(embedder, settings.chunk_chars, settings.chunk_overlap_chars)] = prefix
        sets = ["papers"]
        if with_book:
            result["book"] = _book(env, settings, embedder)
            both = [result["papers"], result["book"]]
            result["all"] = _summary(
                *(sum(r[k] for r in both) for k in ("pages", "chunks", "seconds")),
                {k: sum(r["split_s"][k] for r in both) for k in SPLIT},
                len(papers) + 1,
                {k: sum(r["cpu_s"][k] for r in both) for k in both[0]["cpu_s"]},
            )
            sets += ["book", "all"]
        for name in sets:
            result[name]["vs_pypdf"] = round(result[name]["pages_per_s"] / base[name]["pages_per_s"], 3)
            # On free cores the ingest can take no less than its processes' CPU seconds ÷ the cores, and
            # pypdf no less than its own CPU seconds: the best ratio whatever the machine's load.
            cpu_floor = sum(result[name]["cpu_s"].values()) / CORES
            result[name]["cpu_bound_vs_pypdf"] = round(base[name]["cpu_s"] / cpu_floor, 3) if cpu_floor else None
            log(
                f"  {embedder} {name}: {result[name]['pages_per_s']} pages/s, {result[name]['chunks_per_s']} "
                f"chunks/s ({result[name]['vs_pypdf']}x pypdf's {base[name]['pages_per_s']}) "
                f"split {result[name]['split_s']} cpu {result[name]['cpu_s']} "
                f"(bound on {CORES} cores: {result[name]['cpu_bound_vs_pypdf']}x)"
            )
        out["citebot"][embedder] = result
    return out
