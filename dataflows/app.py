"""Citebot: the one object the CLI, the Slack bot and the benchmarks call.

It owns the long-lived things (the Weaviate connection, the embedder, the chat client, a
process pool for PDF parsing) and one Hamilton driver per dataflow, and turns calls into
dataflow executions. All methods are blocking; the Slack bot runs them in worker threads (its
own thread pool per kind of work) so the event loop never waits on parsing, embedding or the network.

Why the synchronous Hamilton ``Driver``: the work is CPU-bound parsing and blocking client
calls, which belong in threads anyway; as of Hamilton 1.90 the AsyncDriver supports neither
``Parallelizable``/``Collect`` nor caching, and multiprocessing executors pickle node inputs
(Weaviate and model clients do not pickle). So parallelism lives inside nodes (a process
pool for page ranges, a writer thread overlapping embedding with storing) and drivers are
built once and shared by all threads.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from hamilton import driver
from hamilton.lifecycle import api as lifecycle

from citebot.arxiv_ids import check_id_count, normalise_arxiv_id, without_version
from citebot.arxiv_search import ArxivMatch, find_papers
from citebot.domain import Answer, ArxivOutcome, Document, IngestResult, Mode, Passage, Provenance, Scope
from citebot.embeddings import Embedder, build_embedder
from citebot.errors import CitebotError, DocumentNotFound, InvalidArxivId
from citebot.failover import close_store, open_store
from citebot.llm import ChatModel, build_chat_model
from citebot.parse_workers import ParseBudget, ParsePool
from citebot.reranker import Reranker, build_reranker
from citebot.settings import TOP_K_MAX, TOP_K_MIN, Settings, SettingsError
from citebot.store import Lease, Store
from dataflows import arxiv_source, pdf_ingestion, retrieval
from dataflows.pdf_ingestion import AlreadyIndexed, IngestClaim

log = logging.getLogger(__name__)


class NodeTimer(lifecycle.NodeExecutionHook):
    """Seconds spent in each node of the current thread's last run (for progress and benchmarks);
    ``watch(callback)`` also reports each finished node's (name, result) to the current thread's run."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def timings(self) -> dict[str, float]:
        return getattr(self._local, "timings", {})

    def reset(self) -> None:
        self._local.timings = {}

    def run_before_node_execution(self, *, node_name: str, **_: Any) -> None:
        self._local.started = time.perf_counter()

    def watch(self, callback: Callable[[str, Any], None] | None) -> None:
        """Report (node name, result) of every node this thread runs from now on (None: stop)."""
        self._local.on_node = callback

    def run_after_node_execution(self, *, node_name: str, result: Any = None, success: bool = True, **_: Any) -> None:
        self.timings[node_name] = time.perf_counter() - self._local.started
        callback = getattr(self._local, "on_node", None)
        if callback is not None and success:
            try:
                callback(node_name, result)
            except Exception:  # a progress display must never break an answer
                log.exception("progress callback failed on %s", node_name)


def build_drivers(timer: NodeTimer, answer_source: str, rerank: str = "on") -> dict[str, driver.Driver]:
    def build(*modules: Any, **config: Any) -> driver.Driver:
        return driver.Builder().with_modules(*modules).with_config(config).with_adapters(timer).build()

    return {
        "pdf": build(pdf_ingestion),
        "arxiv": build(arxiv_source, pdf_ingestion),
        "answer": build(retrieval, mode="answer", answer_source=answer_source, rerank=rerank),
        "summary": build(retrieval, mode="summary", answer_source=answer_source, rerank=rerank),
    }


# ---- the inputs each run is given (pure: tests validate them against the graphs) -------------
def pdf_source_inputs(pdf: bytes, title_hint: str = "") -> dict[str, Any]:
    """What the pdf flow starts from: the bytes (and a title the sharer gave, if any)."""
    return {"pdf_bytes": pdf, "source_metadata": {"title": title_hint} if title_hint else {}}


def arxiv_source_inputs(settings: Settings, requested: str) -> dict[str, Any]:
    """What the arxiv flow starts from: the id as the user wrote it and where arXiv is."""
    s = settings
    return {
        "arxiv_id_text": requested,
        "arxiv_api_url": s.arxiv_api_url,
        "arxiv_pdf_url": s.arxiv_pdf_url,
        "arxiv_abs_url": s.arxiv_abs_url,
        "download_timeout_s": s.download_timeout_s,
    }


def ingest_inputs(
    settings: Settings,
    source_inputs: dict[str, Any],
    provenance: Provenance,
    *,
    embedder: Embedder,
    store: Store,
    parse_pool: ParsePool,
) -> dict[str, Any]:
    """An ingest run's inputs: the source's, plus the limits and the long-lived collaborators."""
    s = settings
    return {
        **source_inputs,
        "provenance": provenance,
        "max_pdf_bytes": s.max_pdf_bytes,
        "max_pages": s.max_pages,
        "max_page_chars": s.max_page_chars,
        "max_chunks": s.max_chunks,
        "chunk_chars": s.chunk_chars,
        "chunk_overlap_chars": s.chunk_overlap_chars,
        "embedder": embedder,
        "store": store,
        "parse_pool": parse_pool,
        "parse_budget": ParseBudget(s.parse_budget_s),
        "ingest_claim": IngestClaim(),  # Citebot._ingest passes its claim of the document's lease
    }


def ask_inputs(
    settings: Settings,
    question: str,
    scope: Scope,
    *,
    store: Store,
    embedder: Embedder,
    chat_model: ChatModel | None,
    top_k: int | None = None,
    alpha: float | None = None,
    history: Sequence[tuple[str, str]] = (),
    on_partial: Callable[[str], None] | None = None,
    reranker: Reranker | None = None,
) -> dict[str, Any]:
    """A question's inputs for the answer and summary flows (top_k and alpha kept in range)."""
    s = settings
    return {
        "question": question,
        "history": list(history),
        "scope": scope,
        "store": store,
        "embedder": embedder,
        "chat_model": chat_model,
        "top_k": max(TOP_K_MIN, min(top_k or s.top_k, TOP_K_MAX)),
        "alpha": s.alpha if alpha is None else max(0.0, min(alpha, 1.0)),
        "min_relevance": s.min_relevance,
        "rerank_candidates": s.rerank_candidates,
        "decline_below": s.decline_below,
        "reranker": reranker,
        "on_partial": on_partial,
    }


# An ingest holds its document's lease in Weaviate (``Store.acquire_lease``) and renews it every
# INGEST_LEASE / 6; a holder that dies stops renewing and the lease expires. Another ingest of the
# same bytes waits (up to INGEST_WAIT_S) and then reports the document already indexed.
INGEST_LEASE = timedelta(seconds=30)
INGEST_WAIT_S = 180.0
INGEST_POLL_S = 1.0
# Lease owners are "<host>:<pid>:<random>"; the ones this process holds right now:
_PROCESS = f"{socket.gethostname()}:{os.getpid()}:"
_held_here: set[str] = set()
_held_lock = threading.Lock()


def _new_owner() -> str:
    return _PROCESS + uuid.uuid4().hex[:12]


def _abandoned(owner: str) -> bool:
    """A lease of this very process that no thread holds any more (its holder was closed half-way,
    e.g. when Weaviate went down): no need to wait for it to expire."""
    with _held_lock:
        return owner.startswith(_PROCESS) and owner not in _held_here


class _IngestClaim(IngestClaim):
    """A document's ingest lease, claimed in a background thread from creation (the dataflow reads
    the PDF and embeds the first chunks meanwhile). ``wait()`` returns once it is held and the
    document may be written (a half-ingested copy whose holder died is removed first), or raises
    ``AlreadyIndexed``; ``release()`` gives it up."""

    def __init__(self, citebot: Citebot, doc_id: str) -> None:
        self.citebot, self.doc_id = citebot, doc_id
        claiming = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="claim")
        self._future = claiming.submit(citebot._claim_ingest, doc_id)
        claiming.shutdown(wait=False)

    def wait(self) -> None:
        store = self.citebot.store
        held = self._future.result()
        existing = store.get_document(self.doc_id)
        if held is None:
            if existing is None:
                raise CitebotError("That document could not be indexed just now; please try again.")
            raise AlreadyIndexed(existing)
        if existing and existing.status == "ready":
            raise AlreadyIndexed(existing)
        if existing:  # an ingest that died half-way (crash, killed process): its lease expired; start over
            store.remove_document(self.doc_id)

    def release(self, wait: bool = True) -> None:
        """Give the lease up; one still being claimed is given up once it is held."""
        if not self._future.done():
            self._future.add_done_callback(lambda _: self.release(wait=False))
        elif self._future.exception() is None and self._future.result() is not None:
            self.citebot._release(self._future.result(), wait=wait)


class _HeldLease:
    """A lease renewed by a background thread until ``release()``."""

    def __init__(self, store: Store, lease: Lease, ttl: timedelta) -> None:
        self.store, self.lease, self.ttl = store, lease, ttl
        self.lost = False
        self._stop = threading.Event()
        with _held_lock:
            _held_here.add(lease.owner)
        self._thread = threading.Thread(target=self._renew, name=f"lease-{lease.key[:20]}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 6):
            try:
                if not self.store.renew_lease(self.lease, self.ttl):
                    self.lost = True
                    log.warning("lost the lease %s (this process stalled for longer than %s)", self.lease.key, self.ttl)
                    return
            except Exception:  # Weaviate unreachable for a moment: try again at the next tick
                log.warning("could not renew the lease %s", self.lease.key, exc_info=True)

    def release(self) -> None:
        """Stop renewing and give the lease up (a renewal under way cannot re-take it: a released
        lease has no owner)."""
        self._stop.set()
        with _held_lock:
            _held_here.discard(self.lease.owner)
        if not self.lost:
            self.store.release_lease(self.lease)


# What /forget and `citebot forget` accept as naming a document (a meaningful match only).
MIN_ID_PREFIX = 6
MIN_TITLE_WORD = 3
_WORD = re.compile(r"\w+")
FORGET_HOW = (
    f"Name it by at least {MIN_ID_PREFIX} characters of its id, its arXiv ID, or whole words of its title "
    "(`/docs` or `citebot docs` lists them)."
)


class Citebot:
    def __init__(self, settings: Settings) -> None:
        if settings.rerank not in ("on", "off"):
            raise SettingsError(f"CITEBOT_RERANK={settings.rerank!r} must be on or off")
        self.settings = settings
        self.store = open_store(settings)  # fails over across the nodes of a replicated cluster
        self.client = self.store.client
        try:
            self.embedder = build_embedder(settings)
            self.store.check_embedding_model(self.embedder.model_id)
        except BaseException:
            close_store(self.store)
            raise
        self.chat_model = build_chat_model(settings)
        self.timer = NodeTimer()
        self.reranker = build_reranker(settings)
        self.drivers = build_drivers(self.timer, "llm" if self.chat_model else "extractive", settings.rerank)
        self._pool: ParsePool | None = None
        self._pool_lock = threading.Lock()
        self.ingest_lease = INGEST_LEASE
        self._remove_stale_ingests()

    # ---- ingestion -------------------------------------------------------------------------
    def ingest_pdf(self, pdf: bytes, provenance: Provenance, title_hint: str = "") -> IngestResult:
        """Index PDF bytes in ``provenance.scope``. Raises a CitebotError subclass on bad input."""
        return self._ingest("pdf", pdf_source_inputs(pdf, title_hint), provenance)

    def ingest_arxiv(self, ids: Sequence[str], provenance: Provenance) -> list[ArxivOutcome]:
        """Fetch and index arXiv papers; one outcome per requested id, errors per id (more than
        ``MAX_IDS_PER_REQUEST`` ids raise ``TooManyIds``)."""
        check_id_count(ids)
        outcomes = []
        for requested in ids:
            try:
                outcomes.append(ArxivOutcome(requested, result=self._ingest_one_arxiv(requested, provenance)))
            except CitebotError as error:
                outcomes.append(ArxivOutcome(requested, error=str(error)))
            except Exception as error:  # one paper's failure never loses the others
                log.exception("arXiv ingest of %r failed", requested)
                outcomes.append(
                    ArxivOutcome(requested, error=f"Indexing failed unexpectedly ({type(error).__name__}); try again.")
                )
        return outcomes

    def _ingest_one_arxiv(self, requested: str, provenance: Provenance) -> IngestResult:
        started = time.perf_counter()
        arxiv_provenance = Provenance(
            scope=provenance.scope,
            user=provenance.user,
            source="arxiv",
            link=provenance.link,
            filename=f"{requested.strip()}.pdf",
        )
        inputs = arxiv_source_inputs(self.settings, requested)
        arxiv_id = self.drivers["arxiv"].execute(["arxiv_id"], inputs=inputs)["arxiv_id"]
        existing = self.store.find_by_arxiv_id(arxiv_source.without_version(arxiv_id))
        if existing:
            return self._already_present(existing, provenance, started)
        return self._ingest("arxiv", inputs, arxiv_provenance, overrides={"arxiv_id": arxiv_id})

    def _ingest(
        self, flow: str, inputs: dict[str, Any], provenance: Provenance, overrides: dict[str, Any] | None = None
    ) -> IngestResult:
        started = time.perf_counter()
        dr = self.drivers[flow]
        inputs = ingest_inputs(
            self.settings, inputs, provenance, embedder=self.embedder, store=self.store, parse_pool=self._parse_pool()
        )
        self.timer.reset()
        # Phase 1 (cheap): the document's identity. Known bytes are not parsed or embedded again.
        known = dr.execute(["checked_pdf", "document_id", "source_metadata"], inputs=inputs, overrides=overrides or {})
        doc_id = known["document_id"]
        existing = self.store.get_document(doc_id)
        if existing is not None and existing.status == "ready":
            return self._already_present(existing, provenance, started)
        # Phase 2: read, chunk, embed and store. The ingest lease is claimed meanwhile (it waits
        # while another thread or process indexes the document); nothing is written before it is held.
        claim = _IngestClaim(self, doc_id)
        try:
            result: IngestResult = dr.execute(
                ["ingest_result"], inputs={**inputs, "ingest_claim": claim}, overrides={**(overrides or {}), **known}
            )["ingest_result"]
        except AlreadyIndexed as indexed:
            claim.release()
            return self._already_present(indexed.document, provenance, started)
        except BaseException:
            claim.release(wait=False)  # Weaviate may be down: never hold the user up for it
            raise
        claim.release()
        self.store.record_adder(doc_id, provenance.scope, provenance.user)
        result.seconds = round(time.perf_counter() - started, 3)
        result.timings = {
            **{k: round(v, 4) for k, v in self.timer.timings.items()},
            **{f"{k}_inner": round(v, 4) for k, v in result.timings.items()},
        }
        return result

    def _already_present(self, doc: Document, provenance: Provenance, started: float) -> IngestResult:
        if self.store.add_scope(doc.document_id, provenance.scope):
            self.store.record_adder(doc.document_id, provenance.scope, provenance.user)
        return IngestResult(document=doc, already_present=True, seconds=round(time.perf_counter() - started, 3))

    def _parse_pool(self) -> ParsePool:
        """Parse worker processes (started on first use): every PDF is read in one, within the
        parse budget and memory cap, so a hostile file can be stopped without harming the bot."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ParsePool(self.settings.parse_workers, self.settings.parse_memory_mb)
            return self._pool

    # ---- the ingest claim: one ingest per document across threads, processes and replicas ----
    def _claim_ingest(self, doc_id: str) -> _HeldLease | None:
        """Hold the document's ingest lease (renewed in the background until released), or None
        once another holder has made the document ready. Waits while a live holder works on it;
        a holder that died stops renewing and its lease expires after ``ingest_lease``."""
        deadline = time.monotonic() + INGEST_WAIT_S
        while True:
            lease = self.store.acquire_lease(f"ingest:{doc_id}", _new_owner(), self.ingest_lease, _abandoned)
            if lease is not None:
                return _HeldLease(self.store, lease, self.ingest_lease)
            existing = self.store.get_document(doc_id)
            if existing is not None and existing.status == "ready":
                return None
            if time.monotonic() > deadline:
                raise CitebotError("That document is being indexed right now; ask about it in a minute.")
            time.sleep(INGEST_POLL_S)

    def _release(self, held: _HeldLease, wait: bool = True) -> None:
        """Release the lease; ``wait=False``: in the background (after a failure Weaviate may be
        down, and its client retries for a minute; the lease expires by itself anyway)."""

        def release() -> None:
            try:
                held.release()
            except Exception:
                log.warning("could not release the ingest lease %s", held.lease.key, exc_info=True)

        if wait:
            release()
        else:
            with _held_lock:
                _held_here.discard(held.lease.owner)  # this process may take it over at once
            threading.Thread(target=release, name="lease-release", daemon=True).start()

    def _remove_stale_ingests(self) -> None:
        """Remove documents whose ingest died half-way, but never one a live process is indexing."""
        for doc_id in self.store.stale_ingests(older_than=self.ingest_lease):
            lease = self.store.acquire_lease(f"ingest:{doc_id}", _new_owner(), self.ingest_lease, _abandoned)
            if lease is None:
                continue
            held = _HeldLease(self.store, lease, self.ingest_lease)
            try:
                doc = self.store.get_document(doc_id)
                if doc is not None and doc.status != "ready":
                    log.warning("removing half-ingested document %s", doc_id)
                    self.store.remove_document(doc_id)
            finally:
                self._release(held)

    # ---- questions -------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        scope: Scope,
        *,
        top_k: int | None = None,
        alpha: float | None = None,
        mode: Mode = "answer",
        history: Sequence[tuple[str, str]] = (),
        on_partial: Callable[[str], None] | None = None,
        on_progress: Callable[[str, Any], None] | None = None,
    ) -> Answer:
        """Answer from the documents visible in ``scope``. ``on_progress(node, result)`` is called
        after each step of the dataflow (e.g. ``visible_document_ids``, ``relevant_passages``)."""
        inputs = ask_inputs(
            self.settings,
            question,
            scope,
            store=self.store,
            embedder=self.embedder,
            chat_model=self.chat_model,
            top_k=top_k,
            alpha=alpha,
            history=history,
            on_partial=on_partial,
            reranker=self.reranker,
        )
        self.timer.watch(on_progress)
        try:
            answer: Answer = self.drivers[mode].execute(["answer"], inputs=inputs)["answer"]
        finally:
            self.timer.watch(None)
        answer.mode = mode
        return answer

    def retrieve(self, question: str, scope: Scope, *, top_k: int | None = None, alpha: float | None = None) -> list[Any]:
        """Only the search part (benchmarks, evaluation): the sources an answer would be given,
        best first; none when the question is declined."""
        inputs = self._retrieve_inputs(question, scope, top_k, alpha)
        return self.drivers["answer"].execute(["relevant_passages"], inputs=inputs)["relevant_passages"]

    def _retrieve_inputs(self, question: str, scope: Scope, top_k: int | None, alpha: float | None) -> dict[str, Any]:
        s = self.settings
        return {
            "question": question,
            "history": [],
            "scope": scope,
            "store": self.store,
            "embedder": self.embedder,
            "reranker": self.reranker,
            "top_k": top_k or s.top_k,
            "alpha": s.alpha if alpha is None else alpha,
            "rerank_candidates": s.rerank_candidates,
            "min_relevance": s.min_relevance,
            "decline_below": 0.0,
        }

    def search(self, question: str, scope: Scope) -> list[Passage]:
        """Everything the hybrid search finds for ``question`` in ``scope`` (the second stage's
        candidates, before any ranking or relevance floor): what isolation and crash checks need."""
        inputs = {**self._retrieve_inputs(question, scope, None, None)}
        return self.drivers["answer"].execute(["retrieved_passages"], inputs=inputs)["retrieved_passages"]

    def find_arxiv(self, *, words: str = "", ids: Sequence[str] = ()) -> list[ArxivMatch]:
        """Top arXiv matches for ``words`` (``/arxiv search``), or the papers ``ids`` (link previews)."""
        s = self.settings
        return find_papers(s.arxiv_api_url, s.download_timeout_s, words=words, ids=tuple(ids))

    # ---- documents -------------------------------------------------------------------------
    def count_documents(self, scope: Scope) -> int:
        """How many documents a question in ``scope`` searches."""
        return self.store.count_documents(scope)

    def documents(self, scope: Scope) -> list[Document]:
        return self.store.visible_documents(scope)

    def find_document(self, doc: str, scope: Scope) -> Document:
        """The one document visible in ``scope`` that ``doc`` names, by a meaningful match only: at
        least MIN_ID_PREFIX characters of its id, its arXiv ID, or whole words of its title (at
        least one of them MIN_TITLE_WORD characters long). Raises DocumentNotFound otherwise."""
        text = " ".join(doc.split())
        if not text:
            raise DocumentNotFound(FORGET_HOW)
        visible = self.documents(scope)
        wanted = text.lower()
        matches: list[Document] = []
        if len(wanted) >= MIN_ID_PREFIX and re.fullmatch(r"[0-9a-f]+", wanted):
            matches = [d for d in visible if d.document_id.startswith(wanted)]
        if not matches:
            try:
                arxiv_id = without_version(normalise_arxiv_id(text))
            except InvalidArxivId:
                arxiv_id = ""
            matches = [d for d in visible if arxiv_id and without_version(d.arxiv_id or "") == arxiv_id]
        words = _WORD.findall(wanted)
        if not matches and any(len(w) >= MIN_TITLE_WORD for w in words):
            matches = [d for d in visible if set(words) <= set(_WORD.findall(d.title.lower()))]
        if not matches:
            raise DocumentNotFound(f"No document here matches `{text[:80]}`. {FORGET_HOW}")
        if len(matches) > 1:
            listed = "; ".join(f"{d.title} (id {d.document_id[: MIN_ID_PREFIX + 2]})" for d in matches[:5])
            raise DocumentNotFound(f"`{text[:80]}` matches {len(matches)} documents ({listed}); be more specific.")
        return matches[0]

    def forget(self, doc: str, scope: Scope) -> Document:
        """Remove the document ``doc`` names (see ``find_document``) from ``scope``; its data is
        deleted when no scope refers to it any more."""
        return self.forget_document(self.find_document(doc, scope).document_id, scope)

    def visible_document(self, document_id: str, scope: Scope) -> Document:
        """The document with this full id, if it is visible in ``scope``."""
        found = self.store.get_document(document_id)
        if found is None or found.status != "ready" or scope.key not in found.scopes:
            raise DocumentNotFound("That document is not in this channel any more.")
        return found

    def forget_document(self, document_id: str, scope: Scope) -> Document:
        """Remove one document, by its full id, from ``scope`` (a confirmed Slack /forget)."""
        found = self.visible_document(document_id, scope)
        self.store.remove_scope(document_id, scope)
        self.store.forget_adder(document_id, scope)
        return found

    def added_by(self, doc: Document, scope: Scope) -> str:
        """Who added ``doc`` to ``scope`` (who may forget it there besides an admin)."""
        return self.store.adder(doc.document_id, scope) or doc.added_by

    # ---- events and feedback ------------------------------------------------------------------
    def claim_event(self, key: str) -> bool:
        """True the first time ``key`` is claimed, False ever after (across restarts and replicas).

        The bot claims Slack event ids / message ts so that redelivered events do no second work.
        """
        return self.store.claim(key)

    def record_feedback(self, answer_key: str, scope: Scope, user: str, helpful: bool, question: str = "") -> None:
        """Store a 👍/👎 on an answer (latest vote per user and answer wins)."""
        self.store.record_feedback(answer_key, scope, user, helpful, question)

    def feedback_report(self) -> list[dict]:
        """All feedback: answer_key, scope, user, helpful, question, at."""
        return self.store.feedback_rows()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        close_store(self.store)

    def __enter__(self) -> Citebot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
