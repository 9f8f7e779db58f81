"""Figures for docs/reliability.md: each hostile input's time and outcome through ``Citebot``, and
the peak resident memory of this process (the bot) plus its parse workers.

    CITEBOT_PARSE_BUDGET=20 python -m tests.hostile.measure   # starts its own Weaviate

Sizes are the ones from issue #15 (40 MB author, 5 MB page, a million operators, 499 pages).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from citebot.domain import Provenance, Scope
from citebot.downloads import read_pdf_file
from citebot.errors import CitebotError
from citebot.settings import Settings
from citebot.weaviate_server import ensure_binary
from tests.hostile import pdfgen
from tests.paths import PDFS
from tests.weaviate_process import WeaviateProcess

SCOPE = Scope("T-measure", "C-measure")


def _descendants(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    except OSError:
        pass
    return found


def _rss_mib(pid: int, field: str = "Rss:") -> float:
    """Resident memory of one process; ``Pss:`` shares pages the workers inherit from the
    forkserver among them, so a sum over processes counts each page once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _total(me: int, field: str) -> float:
    return _rss_mib(me, field) + sum(_rss_mib(p, field) for p in _descendants(me) if "weaviate" not in _cmd(p))


class PeakRss(threading.Thread):
    """Samples RSS and PSS of this process plus its descendants (parse workers, forkserver) every 50 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = self.peak_self = self.window = self.peak_pss = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.05):
            own = _rss_mib(me)
            self.peak_self = max(self.peak_self, own)
            total, pss = _total(me, "Rss:"), _total(me, "Pss:")
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, pss)
            self.window = max(self.window, pss)

    def take_window(self) -> float:
        """The peak since the last call."""
        peak, self.window = self.window, 0.0
        return peak


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


CASES = {
    "nested forms (12^7 draws, 2 KB)": lambda: pdfgen.nested_forms(7, 12),
    "5,000 forms with text": lambda: pdfgen.many_text_forms(5000),
    "5 MB of text on one page": lambda: pdfgen.huge_text_page(5_000_000),
    "1,000,000 tiny text operators": lambda: pdfgen.tiny_operators(1_000_000),
    "20 MB word without spaces": lambda: pdfgen.text_pdf([[b"x" * 20_000_000]]),
    "40 MB /Author": lambda: pdfgen.huge_metadata(40 * 2**20),
    "499 pages, one content stream": lambda: pdfgen.shared_content(499),
    "lone surrogate in text": pdfgen.lone_surrogate_text,
    "escape sequences in title": pdfgen.escape_title,
    "300,000 characters on one page": lambda: pdfgen.huge_text_page(300_000),
}


def main() -> None:
    budget = float(os.environ.get("CITEBOT_PARSE_BUDGET", "20"))
    from dataflows.app import Citebot

    root = Path(tempfile.mkdtemp(prefix="hostile-measure-"))
    server = WeaviateProcess(ensure_binary(Settings.from_env().weaviate_binary_dir), root / "data").start()
    rss = PeakRss()
    try:
        settings = replace(
            Settings.from_env({}),
            data_dir=str(root / "citebot"),
            weaviate_url=server.url,
            weaviate_grpc_port=server.grpc_port,
            collection_prefix="Measure",
            parse_budget_s=budget,
        )
        files = {}
        for n, (name, make) in enumerate(CASES.items()):  # made before measuring: not the bot's memory
            files[name] = root / f"case{n}.pdf"
            files[name].write_bytes(make())
        with Citebot(settings) as bot:
            known = bot.ingest_pdf((PDFS / "1706.03762.pdf").read_bytes(), Provenance(scope=SCOPE, filename="a.pdf"))
            me = os.getpid()
            print(
                f"after indexing 1706.03762, bot + workers: RSS {_total(me, 'Rss:'):.0f} MiB, "
                f"PSS {_total(me, 'Pss:'):.0f} MiB (bot alone {_rss_mib(me):.0f} MiB)"
            )
            rss.start()
            print(
                f"budget {budget:.0f} s, workers {settings.parse_workers}, worker memory cap {settings.parse_memory_mb} MiB"
            )
            print("| input | size | seconds | peak PSS, bot + workers | outcome |\n|---|---|---|---|---|")
            for name in CASES:
                pdf = files[name].read_bytes()
                started = time.perf_counter()
                try:
                    result = bot.ingest_pdf(pdf, Provenance(scope=SCOPE, filename="hostile.pdf"))
                    doc = result.document
                    outcome = f"indexed: {doc.pages} pages, {doc.chunks} chunks, title {doc.title[:40]!r}"
                    outcome += f", authors ≤ {max((len(a) for a in doc.authors), default=0)} chars"
                    if result.notes:
                        outcome += "; note: " + result.notes[0][:60] + "…"
                    bot.forget(doc.document_id, SCOPE)
                except CitebotError as error:
                    outcome = f"{type(error).__name__}: {str(error)[:90]}"
                seconds = time.perf_counter() - started
                time.sleep(0.2)
                peak = rss.take_window()
                print(f"| {name} | {len(pdf) / 2**20:.2f} MiB | {seconds:.1f} | {peak:.0f} MiB | {outcome} |", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                fifo, sparse = Path(tmp, "p.pdf"), Path(tmp, "s.pdf")
                os.mkfifo(fifo)
                with open(sparse, "wb") as f:
                    f.truncate(8 * 2**30)
                for name, path in (("FIFO", fifo), ("/dev/zero", Path("/dev/zero")), ("8 GB sparse file", sparse)):
                    started = time.perf_counter()
                    try:
                        read_pdf_file(path, settings.max_pdf_bytes)
                        outcome = "read?!"
                    except CitebotError as error:
                        outcome = f"{type(error).__name__}: {error}"
                    print(f"| {name} (CLI) | - | {time.perf_counter() - started:.3f} | - | {outcome} |")
            answer = bot.ask("Which optimizer did the Transformer use?", SCOPE)
            still = any(c.document_id == known.document.document_id for c in answer.citations)
            print(f"\nearlier document still answerable: {still}; documents here: {len(bot.documents(SCOPE))}")
            rss.stop.set()
            print(
                f"peak bot + workers: RSS {rss.peak:.0f} MiB, PSS {rss.peak_pss:.0f} MiB "
                f"(bot alone RSS {rss.peak_self:.0f} MiB)"
            )

            # Overhead of parsing in a worker rather than in the calling thread (Attention, 15 pages).
            from citebot.parse_workers import ParseBudget, parse_pages, read_overview
            from citebot.pdf_text import TextCaps, extract_pages, pdf_overview

            pdf, pool, caps = (PDFS / "1706.03762.pdf").read_bytes(), bot._parse_pool(), TextCaps(200_000, 5000, 1500)
            inline, worker = [], []
            for _ in range(5):
                t = time.perf_counter()
                extract_pages(pdf, 0, pdf_overview(pdf, 500).pages, caps)
                inline.append(time.perf_counter() - t)
                t = time.perf_counter()
                parse_pages(pool, pdf, 0, read_overview(pool, pdf, 500, ParseBudget(60)).pages, ParseBudget(60), caps)
                worker.append(time.perf_counter() - t)
            print(
                f"parse 1706.03762 (15 pages), median of 5: in-thread {statistics.median(inline):.2f} s, "
                f"in workers {statistics.median(worker):.2f} s"
            )
    finally:
        rss.stop.set()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
