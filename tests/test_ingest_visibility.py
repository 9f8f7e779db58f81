"""Nothing of a document is found or listed before every chunk is stored."""

from __future__ import annotations

import time

from citebot.domain import Provenance, Scope
from tests.paths import PDFS
from tests.reliability.helpers import run_in_thread
from tests.standins.background import Fault
from tests.standins.settings import with_standins


def test_a_document_is_found_only_once_every_chunk_is_stored(base_settings, openai_standin) -> None:
    from dataflows.app import Citebot

    scope = Scope("T-stream", "C-stream")
    question = "How many layers does the residual network on ImageNet have?"
    settings = with_standins(
        base_settings, openai=openai_standin, collection_prefix="Stream", chunk_chars=300, chunk_overlap_chars=50
    )  # small chunks: several batches of 64, each embedded slowly
    with Citebot(settings) as bot:
        vector = bot.embedder.embed_query(question)  # the looks below make no embedding call
        openai_standin.faults.extend([Fault(delay=0.8, path="embeddings")] * 4)  # slow embedding: a wide window
        thread, out = run_in_thread(
            lambda: bot.ingest_pdf((PDFS / "1512.03385.pdf").read_bytes(), Provenance(scope=scope, filename="resnet.pdf"))
        )
        looks = []  # (chunks stored before the look, passages found, documents listed) while still ingesting
        while thread.is_alive():
            stored = len(bot.store.chunks.query.fetch_objects(limit=5000, return_properties=[]).objects)
            hits, listed = bot.store.search(question, vector, scope, limit=12, alpha=0.5), bot.documents(scope)
            records = list(bot.store.documents.iterator(return_properties=["status"]))
            if records and records[0].properties["status"] == "ingesting":  # still not ready after the look
                looks.append((stored, len(hits), len(listed)))
            time.sleep(0.05)
        thread.join()
        openai_standin.faults.clear()  # any not taken
        assert "error" not in out, out.get("error")
        total = out["result"].document.chunks
        assert all(listed == 0 for _, _, listed in looks), looks
        # Found only once every chunk is stored (finish_document gives them their scopes, then the record is ready).
        assert all(found == 0 or stored == total for stored, found, _ in looks), (total, looks)
        assert len([1 for stored, _, _ in looks if 0 < stored < total]) >= 2, (total, looks)
        result = out["result"]
        hits = bot.search(question, scope)
        assert hits and {h.chunk.document_id for h in hits} == {result.document.document_id}
        assert [d.chunks for d in bot.documents(scope)] == [result.document.chunks]
