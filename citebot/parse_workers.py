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

import hashlib
import logging
import math
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from citebot import logs
from citebot.errors import CitebotError, PdfTooComplex, PdfTooSlow
from citebot.pdf_text import OpenPdf, PageText, PdfOverview, TextCaps

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
        self.holds: str | None = None  # the key of the document this worker has open (it may have forgotten it)
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
            if _open and not conn.poll(FORGET_AFTER_S):
                _open.clear()  # an idle worker does not hold a document
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
        if not reply[0]:
            _open.clear()  # a document that failed is not read on
        retire = retire or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > RECYCLE_ABOVE_MB * 1024
        try:
            conn.send((*reply, retire))
        except MemoryError:
            return
        if retire:
            return


# ---- in a worker: the document being read stays open between its page ranges ------------------
# A worker keeps the last document it read open (its parsed objects and fonts) until it reads
# another or has been idle this long; a call naming a document it no longer has answers RESEND.
FORGET_AFTER_S = 2.0
RESEND = "resend: the worker no longer has the document open"
_open: dict[str, OpenPdf] = {}


def _document(key: str, pdf: bytes | None) -> OpenPdf | None:
    """The open document ``key``; opened from ``pdf`` unless this worker has it open already
    (keys are the documents' SHA-256: the same key is the same bytes)."""
    doc = _open.get(key)
    if doc is None and pdf is not None:
        _open.clear()  # the previous document's objects go before this one's are read
        doc = OpenPdf(pdf)
        _open[key] = doc
    return doc


def _overview(key: str, pdf: bytes, max_pages: int) -> PdfOverview:
    doc = _document(key, pdf)
    assert doc is not None
    return doc.overview(max_pages)


def _pages(key: str, pdf: bytes | None, start: int, end: int, caps: TextCaps) -> list[PageText] | str:
    doc = _document(key, pdf)
    return RESEND if doc is None else doc.pages(start, end, caps)


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
        all within ``budget`` (see ``results``)."""
        return list(self.results(lambda worker, args: (fn, args), calls, budget))

    def results(
        self,
        call: Callable[[_Worker, Any], tuple[Callable[..., Any], tuple]],
        items: Sequence[Any],
        budget: ParseBudget,
        cancelled: threading.Event | None = None,
        most: int = 0,
    ) -> Iterator[Any]:
        """The results of ``fn(*args)`` for ``fn, args = call(worker, item)``, item by item in order,
        each as soon as it and those before it are done; each call in a worker, in parallel as
        workers allow, all within ``budget``. A worker's answer ``RESEND`` sends its item again.
        On the first error or when the budget runs out, every worker still busy with these calls
        is killed and the error raised (``PdfTooSlow``, ``PdfTooComplex`` or the call's own
        ``CitebotError``); when ``cancelled`` is set, they are killed and the results end. ``most``:
        at most this many workers at once (0: as many as the pool has)."""
        pending = deque(enumerate(items))
        done: dict[int, Any] = {}
        upcoming = 0
        busy: dict[Connection, tuple[_Worker, int, Any]] = {}
        try:
            while upcoming < len(items):
                if upcoming in done:
                    yield done.pop(upcoming)
                    upcoming += 1
                    continue
                while pending and not (most and len(busy) >= most):
                    worker = self._acquire(block=not busy)
                    if worker is None:
                        break
                    index, item = pending.popleft()
                    busy[worker.conn] = (worker, index, item)
                    budget.start()
                    try:
                        worker.conn.send(call(worker, item))
                    except OSError:  # the worker ran out of memory receiving the PDF
                        raise PdfTooComplex(TOO_BIG.format(mb=self.memory_mb)) from None
                if cancelled is not None and cancelled.is_set():
                    return
                remaining = budget.remaining()
                if remaining <= 0:
                    raise budget.exceeded()
                timeout = min(remaining, 0.05) if pending else (None if math.isinf(remaining) else remaining)
                if cancelled is not None:
                    timeout = min(timeout or CANCEL_POLL_S, CANCEL_POLL_S)
                for conn in wait(list(busy), timeout=timeout):
                    worker, index, item = busy.pop(conn)  # type: ignore[arg-type]
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
                    if isinstance(value, str) and value == RESEND:
                        worker.holds = None
                        pending.appendleft((index, item))
                    else:
                        done[index] = value
        finally:
            for worker, _, _ in busy.values():
                self._discard(worker)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


# How often a cancellable call checks whether it was cancelled while it waits for its workers.
CANCEL_POLL_S = 0.1
# A document's pages are read in batches handed to whichever worker is free (each worker keeps
# the document open between batches): about BATCHES_PER_WORKER batches per worker, of
# MIN_BATCH_PAGES to MAX_BATCH_PAGES pages (small batches balance uneven pages and let the first
# pages flow on early; large ones cost fewer round trips).
BATCHES_PER_WORKER = 3
MIN_BATCH_PAGES = 2
MAX_BATCH_PAGES = 16
# One document's pages are read by at most this many workers at once: one per core (a worker
# more would only share a core, and it would parse the PDF's objects and fonts once more).
STREAM_WORKERS = os.cpu_count() or 1


class PageStream:
    """Pages [0, ``page_total``) of one PDF, in order, a batch (list of ``PageText``) at a time,
    each batch as soon as it and those before it are read: parsed in the pool's workers within
    the document's ``budget`` and ``caps`` (too much text is refused as soon as it is read).
    Iterate once; ``cancel()`` (from any thread) stops the reading and frees its workers."""

    def __init__(
        self, pool: ParsePool, pdf: bytes, key: str, page_total: int, budget: ParseBudget, caps: TextCaps, start: int = 0
    ) -> None:
        self.pool, self.pdf, self.key, self.budget, self.caps = pool, pdf, key, budget, caps
        self.start, self.end = start, page_total
        self.workers = min(self.pool.max_workers, STREAM_WORKERS)
        self._cancelled = threading.Event()

    def batches(self) -> list[tuple[int, int]]:
        """The page ranges [start, end) read by one call each."""
        size = math.ceil((self.end - self.start) / (self.workers * BATCHES_PER_WORKER))
        size = max(MIN_BATCH_PAGES, min(MAX_BATCH_PAGES, size))
        return [(first, min(first + size, self.end)) for first in range(self.start, self.end, size)]

    def cancel(self) -> None:
        self._cancelled.set()

    def __iter__(self) -> Iterator[list[PageText]]:
        texts: set[str] = set()
        chars = 0
        for pages in self.pool.results(self._call, self.batches(), self.budget, self._cancelled, most=self.workers):
            for page in pages:
                if page.text not in texts:
                    texts.add(page.text)
                    chars += len(page.text)
            if self.caps.document_chars and chars > self.caps.document_chars:
                raise self.caps.too_much()
            yield pages

    def _call(self, worker: _Worker, batch: tuple[int, int]) -> tuple[Callable[..., Any], tuple]:
        pdf = None if worker.holds == self.key else self.pdf
        worker.holds = self.key
        return _pages, (self.key, pdf, *batch, self.caps)


def parse_pages(pool: ParsePool, pdf: bytes, start: int, end: int, budget: ParseBudget, caps: TextCaps) -> list[PageText]:
    """Text of pages [start, end) (0-based) within ``budget`` and ``caps``, in worker processes."""
    return [page for batch in PageStream(pool, pdf, document_key(pdf), end, budget, caps, start) for page in batch]


def document_key(pdf: bytes) -> str:
    """What a worker knows an open document by (the SHA-256 of its bytes, as its document id)."""
    return hashlib.sha256(pdf).hexdigest()


def read_overview(pool: ParsePool, pdf: bytes, max_pages: int, budget: ParseBudget, key: str = "") -> PdfOverview:
    """Page count, metadata and first-page title, read in a worker within ``budget``; the worker
    keeps the document open under ``key`` (default ``document_key(pdf)``) for a ``PageStream``."""
    key = key or document_key(pdf)

    def call(worker: _Worker, _: Any) -> tuple[Callable[..., Any], tuple]:
        worker.holds = key
        return _overview, (key, pdf, max_pages)

    return next(pool.results(call, [None], budget))
