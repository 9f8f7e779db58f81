"""Weaviate SIGKILLed in the middle of a 352-page ingest, then restarted on the same ports and
data dir; and a plain restart of the bot (new ``Citebot``) on the same Weaviate.

The server here is this module's own ``WeaviateProcess`` (own data dir), never the session's
shared one. Embeddings come from the stand-in OpenAI server, slowed by ``Fault(delay=...)`` so
that the kill lands while chunks are being stored.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from citebot import errors
from citebot.domain import IngestResult, Provenance, Scope
from citebot.settings import Settings
from citebot.store import connect
from citebot.weaviate_server import ensure_binary, free_port
from dataflows.app import Citebot
from tests.paths import NASTY, PDFS
from tests.standins.background import Fault
from tests.standins.settings import with_standins
from tests.weaviate_process import WeaviateProcess

from .helpers import bounded, run_in_thread, wait_until

SCOPE = Scope("T-crash", "C-crash")
BOOK = NASTY / "large_352pages_freeculture.pdf"
BEFORE = {"1706.03762": "Attention Is All You Need", "1810.04805": "BERT"}
QUESTIONS = {
    "1706.03762": "What optimizer was used to train the Transformer?",
    "1810.04805": "What are the two pre-training tasks of BERT, masked LM and next sentence prediction?",
}
EMBED_DELAY_S = 0.35  # per embedding request (64 chunks): the book's ~13 requests take ~5 s


def _chunk_count(bot: Citebot, doc_id: str | None = None) -> int:
    """Exact count (by iterating: an unfiltered aggregate count is approximate after a crash)."""
    return sum(
        1
        for o in bot.store.chunks.iterator(return_properties=["document_id"])
        if doc_id is None or o.properties["document_id"] == doc_id
    )


@pytest.fixture(scope="module")
def own_weaviate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeaviateProcess]:
    binary = ensure_binary(Settings.from_env().weaviate_binary_dir)
    root = tmp_path_factory.mktemp("weaviate-crash")
    server = WeaviateProcess(
        binary, root / "data", http_port=free_port(), grpc_port=free_port(), log_path=root / "weaviate.log"
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def crash_settings(base_settings, openai_standin, own_weaviate: WeaviateProcess) -> Settings:
    return with_standins(
        base_settings,
        openai=openai_standin,
        weaviate_url=own_weaviate.url,
        weaviate_grpc_port=own_weaviate.grpc_port,
        collection_prefix="Crash",
        max_pages=400,
    )


def _close_quietly(closable: Any, timeout: float = 30) -> float:
    """Close a Citebot (or client) whose server was killed; bounded, because its client may hang."""
    began = time.perf_counter()
    try:
        bounded(closable.close, timeout)
    except TimeoutError:
        raise
    except Exception:  # the old client may complain that its server is gone; that is fine
        pass
    return time.perf_counter() - began


def _indexed_chunk_count(bot: Citebot, doc_id: str) -> int:
    """What Weaviate finds through the ``document_id`` filter (what forget/search/finish use)."""
    from weaviate.classes.query import Filter

    return bot.store.chunks.aggregate.over_all(
        filters=Filter.by_property("document_id").equal(doc_id), total_count=True
    ).total_count


@dataclass
class Crash:
    book: bytes
    book_id: str
    before: dict[str, IngestResult]
    chunks_before: int
    error: BaseException | None
    bot: Citebot  # the new Citebot after the restart


@pytest.fixture(scope="module")
def crash(own_weaviate: WeaviateProcess, crash_settings: Settings, openai_standin, figures) -> Iterator[Crash]:
    """Index two papers, start the book's ingest, SIGKILL Weaviate mid-way, restart it on the
    same ports and data dir, and open a new Citebot on it."""
    book = BOOK.read_bytes()
    book_id = hashlib.sha256(book).hexdigest()
    old = Citebot(crash_settings)
    before = {
        name: old.ingest_pdf((PDFS / f"{name}.pdf").read_bytes(), Provenance(scope=SCOPE, user="U1", filename=f"{name}.pdf"))
        for name in BEFORE
    }
    assert old.claim_event("Ev-before-crash")
    chunks_before = _chunk_count(old)

    openai_standin.reset()
    openai_standin.faults.extend([Fault(delay=EMBED_DELAY_S, path="embeddings")] * 40)
    thread, out = run_in_thread(
        lambda: old.ingest_pdf(book, Provenance(scope=SCOPE, user="U1", filename="book.pdf")), name="book-ingest"
    )
    # Kill while a batch of chunks is being written: watch the chunk count (through a client of
    # our own) and kill as soon as it shows a batch of 64 half-stored, after at least one full batch.
    seen: list[int] = []
    watcher = connect(crash_settings)
    try:
        chunks = watcher.collections.get("CrashChunk")

        def mid_batch() -> bool:
            try:
                stored = chunks.aggregate.over_all(total_count=True).total_count - chunks_before
            except Exception:  # e.g. "no nodes reported object count for shard" while it is busy
                return False
            seen.append(stored)
            return (
                (stored > 64 and stored % 64 != 0)
                or openai_standin.embedding_calls >= 10
                or "error" in out
                or "result" in out
            )

        wait_until(mid_batch, timeout=90, interval=0)
        assert "result" not in out and "error" not in out, out
        killed_at = time.perf_counter()
        own_weaviate.kill()
    finally:
        _close_quietly(watcher)
    thread.join(timeout=120)
    assert not thread.is_alive(), "ingest_pdf still hangs 120 s after Weaviate was killed"
    seconds_to_error = time.perf_counter() - killed_at
    close_s = _close_quietly(old)
    openai_standin.reset()

    began = time.perf_counter()
    own_weaviate.start()
    restart_s = time.perf_counter() - began
    new = Citebot(crash_settings)
    stored = _chunk_count(new, book_id)
    figures.record(
        "weaviate_kill_mid_ingest",
        pages=352,
        book_chunks_in_weaviate_after_restart=stored,
        book_chunks_found_by_document_id_filter_after_restart=_indexed_chunk_count(new, book_id),
        seconds_from_kill_to_user_error=round(seconds_to_error, 2),
        user_error=str(out.get("error")),
        old_client_close_seconds=round(close_s, 2),
        weaviate_restart_seconds=round(restart_s, 2),
        documents_before=len(before),
        chunks_before=chunks_before,
        book_chunks_seen_when_killed=seen[-1],
    )
    yield Crash(book, book_id, before, chunks_before, out.get("error"), new)
    new.close()


def test_the_interrupted_ingest_tells_the_user_to_retry(crash: Crash) -> None:
    assert isinstance(crash.error, errors.CitebotError), f"expected a CitebotError, got {crash.error!r}"
    assert "try again" in str(crash.error).lower(), str(crash.error)


def test_after_the_restart_nothing_is_lost_and_the_book_is_whole_or_invisible(crash: Crash, figures) -> None:
    new, book_id = crash.bot, crash.book_id
    record = new.store.get_document(book_id)
    stored = _chunk_count(new, book_id)
    visible = {d.document_id: d for d in new.documents(SCOPE)}
    # never partial: either the whole book (and ready), or nothing a user can see or search
    if record and record.status == "ready":
        assert stored == record.chunks and book_id in visible
        state = "complete"
    else:
        assert book_id not in visible
        hits = new.search("free culture copyright piracy", SCOPE)
        assert hits and not any(h.chunk.document_id == book_id for h in hits)
        state = "absent" if record is None and stored == 0 else "invisible leftover (status 'ingesting')"
    # everything indexed before the crash is still there, whole, and answerable
    for name, result in crash.before.items():
        assert result.document.document_id in visible, f"{name} lost in the crash"
        assert (
            visible[result.document.document_id].chunks
            == result.document.chunks
            == _chunk_count(new, result.document.document_id)
        )
        answer = new.ask(QUESTIONS[name], SCOPE)
        assert result.document.document_id in {c.document_id for c in answer.citations}, (name, answer.text)
    assert _chunk_count(new) - stored == crash.chunks_before
    assert not new.claim_event("Ev-before-crash")  # a claim acknowledged before the kill survived
    figures.record(
        "weaviate_kill_mid_ingest", book_state_after_restart=state, documents_lost=0, chunks_lost=0, claimed_events_lost=0
    )


def test_ingesting_the_book_again_after_the_restart_succeeds_completely(crash: Crash, figures) -> None:
    new, book_id = crash.bot, crash.book_id
    leftover, leftover_indexed = _chunk_count(new, book_id), _indexed_chunk_count(new, book_id)
    try:
        again = new.ingest_pdf(crash.book, Provenance(scope=SCOPE, user="U1", filename="book.pdf"))
    except errors.CitebotError as error:
        figures.record("weaviate_kill_mid_ingest", reingest_after_restart=f"FAILED: {error}")
        pytest.fail(
            f"re-ingesting the book after the crash failed: {error}. Before it, {leftover} chunks of the killed "
            f"ingest were in Weaviate but only {leftover_indexed} were found by the document_id filter: "
            f"Store.remove_document (delete_many by filter) leaves the other {leftover - leftover_indexed}, and "
            f"re-inserting them under the same deterministic UUIDs does not re-index them, so "
            f"Store.finish_document's filtered count never matches."
        )
    assert not again.already_present and again.document.pages == 352
    assert _chunk_count(new, book_id) == _indexed_chunk_count(new, book_id) == again.document.chunks
    assert new.store.get_document(book_id).chunks == again.document.chunks
    assert _chunk_count(new) == crash.chunks_before + again.document.chunks  # no orphans anywhere
    assert book_id in {d.document_id for d in new.documents(SCOPE)}
    figures.record(
        "weaviate_kill_mid_ingest",
        book_chunks=again.document.chunks,
        reingest_after_restart="ok",
        reingest_seconds=again.seconds,
    )


def test_a_new_citebot_on_the_same_weaviate_keeps_documents_and_claimed_events(crash_settings, figures) -> None:
    """Close the bot, start a new one: same documents; events claimed before are not claimed
    again (a redelivered Slack event does no second work)."""
    scope = Scope("T-restart", "C-restart")
    with Citebot(crash_settings) as first:
        result = first.ingest_pdf((PDFS / "2004.04906.pdf").read_bytes(), Provenance(scope=scope, filename="dpr.pdf"))
        keys = [f"Ev-restart-{i}" for i in range(20)]
        assert all(first.claim_event(k) for k in keys)
        assert not any(first.claim_event(k) for k in keys)
        docs = first.documents(scope)
    with Citebot(crash_settings) as second:
        assert second.documents(scope) == docs
        assert [second.claim_event(k) for k in keys] == [False] * len(keys)
        assert second.claim_event("Ev-restart-new")
        answer = second.ask("How are passages encoded in dense passage retrieval?", scope)
        assert result.document.document_id in {c.document_id for c in answer.citations}
    figures.record(
        "restart_persistence",
        documents_kept=f"{len(docs)}/{len(docs)}",
        claimed_events_reclaimed=0,
        claimed_events_checked=len(keys),
    )
