"""PDF parsing in worker processes that can be killed: a time budget per document and a memory
cap per worker, so a hostile PDF costs one worker for at most the budget and never the bot.

A ``ProcessPoolExecutor`` cannot cancel a running task, so ``ParsePool`` manages its own
processes (forkserver children: never fork a process that runs gRPC and model threads). Each
worker serves one call at a time over a pipe; a call that outlives its document's budget has its
worker killed (the next call starts a fresh one), and a worker that dies (out of memory under
its ``RLIMIT_AS``, a crash in a C library) turns into a clear error for that document only.
Other documents keep their own workers meanwhile.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import resource
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from citebot import logs
from citebot.errors import CitebotError, PdfTooComplex, PdfTooSlow
from citebot.pdf_text import PageText, PdfOverview, TextCaps, extract_pages, pdf_overview

log = logging.getLogger(__name__)

TOO_SLOW = "The PDF took too long to read (over {budget:.0f} s); is it a scanned or unusual PDF? Try exporting it again."
# A worker whose peak memory passed this many MiB is replaced after its call: Python keeps freed
# memory, and an idle worker should not hold what one odd PDF once needed.
RECYCLE_ABOVE_MB = 160
TOO_BIG = "The PDF needs more memory to read than citebot allows (over {mb} MiB); is it a scanned or unusual PDF?"


class ParseBudget:
    """The seconds one document's parsing may take, counted from when its first worker starts
    (waiting for a free worker is not the document's fault). Shared by every call for that
    document, so page ranges parsed in several calls share one budget; 0 means no limit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._started: float | None = None

    def start(self) -> None:
        if self._started is None:
            self._started = time.monotonic()

    def remaining(self) -> float:
        if self.seconds <= 0:
            return math.inf
        if self._started is None:
            return self.seconds
        return self.seconds - (time.monotonic() - self._started)

    def exceeded(self) -> PdfTooSlow:
        return PdfTooSlow(TOO_SLOW.format(budget=self.seconds))


class _Worker:
    def __init__(self, ctx: Any, memory_bytes: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, memory_bytes), name="citebot-parse", daemon=True)
        self.process.start()
        child.close()

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(5)
        finally:
            self.conn.close()


def _serve(conn: Connection, memory_bytes: int) -> None:
    """A worker's loop: (function, args) in, (ok, value) out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logs.configure_parse_worker()
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError, MemoryError):  # MemoryError: the PDF alone is over the limit
            return
        retire = False
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except MemoryError:
            reply, retire = (False, None), True  # the parent names the limit; this heap may be a mess
        except CitebotError as error:
            reply = (False, error)
        except BaseException as error:  # noqa: BLE001 - anything else is reported, not pickled as is
            reply = (False, RuntimeError(f"{type(error).__name__}: {error}"[:300]))
        retire = retire or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > RECYCLE_ABOVE_MB * 1024
        try:
            conn.send((*reply, retire))
        except MemoryError:
            return
        if retire:
            return


class ParsePool:
    """Up to ``workers`` parse processes, started on demand and reused; each limited to
    ``memory_mb`` of address space."""

    def __init__(self, workers: int, memory_mb: int) -> None:
        self.max_workers = max(1, workers)
        self.memory_mb = memory_mb
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["citebot.pdf_text"])
        self._idle: list[_Worker] = []
        self._alive = 0
        self._cond = threading.Condition()
        self._closed = False

    # ---- workers -----------------------------------------------------------------------------
    def _acquire(self, block: bool) -> _Worker | None:
        with self._cond:
            while True:
                if self._closed:
                    raise CitebotError("citebot is shutting down; try again in a minute.")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.process.is_alive():
                        return worker
                    self._alive -= 1
                    worker.conn.close()
                if self._alive < self.max_workers:
                    self._alive += 1
                    break
                if not block:
                    return None
                self._cond.wait()
        try:
            return _Worker(self._ctx, self.memory_mb * 2**20)
        except BaseException:
            with self._cond:
                self._alive -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            self._idle.append(worker)
            self._cond.notify()

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._cond:
            self._alive -= 1
            self._cond.notify()

    def start_workers(self) -> None:
        """Start every worker now rather than on first use (benchmarks measure a warm bot)."""
        started = []
        while (worker := self._acquire(block=False)) is not None:
            started.append(worker)
        for worker in started:
            self._release(worker)

    # ---- calls -------------------------------------------------------------------------------
    def run(self, fn: Callable[..., Any], calls: Sequence[tuple], budget: ParseBudget) -> list[Any]:
        """``[fn(*args) for args in calls]``, each call in a worker, in parallel as workers allow,
        all within ``budget``. On the first error or when the budget runs out, every worker still
        busy with these calls is killed and the error raised (``PdfTooSlow``, ``PdfTooComplex``
        or the call's own ``CitebotError``)."""
        pending = list(enumerate(calls))
        results: list[Any] = [None] * len(calls)
        busy: dict[Connection, tuple[_Worker, int]] = {}
        try:
            while pending or busy:
                while pending:
                    worker = self._acquire(block=not busy)
                    if worker is None:
                        break
                    index, args = pending.pop(0)
                    busy[worker.conn] = (worker, index)
                    budget.start()
                    try:
                        worker.conn.send((fn, args))
                    except OSError:  # the worker ran out of memory receiving the PDF
                        raise PdfTooComplex(TOO_BIG.format(mb=self.memory_mb)) from None
                remaining = budget.remaining()
                if remaining <= 0:
                    raise budget.exceeded()
                timeout = min(remaining, 0.05) if pending else (None if math.isinf(remaining) else remaining)
                for conn in wait(list(busy), timeout=timeout):
                    worker, index = busy.pop(conn)  # type: ignore[arg-type]
                    try:
                        ok, value, retire = conn.recv()  # type: ignore[union-attr]
                    except (EOFError, OSError):
                        self._discard(worker)
                        raise PdfTooComplex(TOO_BIG.format(mb=self.memory_mb)) from None
                    if retire:
                        self._discard(worker)
                    else:
                        self._release(worker)
                    if not ok:
                        raise value if value is not None else PdfTooComplex(TOO_BIG.format(mb=self.memory_mb))
                    results[index] = value
            return results
        finally:
            for worker, _ in busy.values():
                self._discard(worker)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


# Page ranges: PDFs with at least this many pages are split into about this many ranges, parsed
# in parallel (more ranges than workers balances uneven pages).
MIN_PAGES_TO_SPLIT = 8
RANGES = 6


def parse_pages(pool: ParsePool, pdf: bytes, start: int, end: int, budget: ParseBudget, caps: TextCaps) -> list[PageText]:
    """Text of pages [start, end) (0-based) within ``budget`` and ``caps``, in worker processes.
    A streaming ingest can call this once per page range with the document's one budget."""
    count = end - start
    parts = 1 if count < MIN_PAGES_TO_SPLIT else min(RANGES, count // 4)
    bounds = [start + round(i * count / parts) for i in range(parts + 1)]
    ranges = [(pdf, a, b, caps) for a, b in zip(bounds, bounds[1:]) if b > a]
    pages = [page for part in pool.run(extract_pages, ranges, budget) for page in part]
    if caps.document_chars and sum(len(text) for text in {p.text for p in pages}) > caps.document_chars:
        raise caps.too_much()
    return pages


def read_overview(pool: ParsePool, pdf: bytes, max_pages: int, budget: ParseBudget) -> PdfOverview:
    """Page count, metadata and first-page title, read in a worker within ``budget``."""
    return pool.run(pdf_overview, [(pdf, max_pages)], budget)[0]
