"""Section 3: retrieval latency at 1k, 10k and 100k chunks.

The store grows in one collection: real chunks of the nine papers and the book (chunked by
citebot's own chunker at the default size), embedded once by the stand-in's deterministic
embedding function, then copied under distinct document ids (each copy is a whole document:
a Document object plus its chunks, inserted through ``Store.store_chunks`` in big batches).
Copies get a small random perturbation of their vectors so the HNSW graph is not built from
exact duplicates. All documents are visible in one scope, so every query's filter names every
document (about 700 ids at 100k chunks) — the product's real worst case for one channel.

At each size: ``Citebot.retrieve`` (query embedding over HTTP from the stand-in + the visible
documents lookup + hybrid search + result assembly) and, in the same run, the same hybrid query
sent directly with the weaviate client (same text, vector, alpha, limit, fusion, filter,
returned vector), i.e. Weaviate's own time including the gRPC round trip.
"""

from __future__ import annotations

import time
from datetime import UTC
from pathlib import Path
from typing import Any

from bench.common import BOOK, PAPERS_SCOPE, BenchEnv, log, pct

SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
BATCH = 2_000


def _corpus(paths: list[Path], chunk_chars: int, overlap: int) -> list[tuple[str, list[Any]]]:
    """(title, chunks) per real document, chunked exactly as ingestion does."""
    from citebot.chunking import chunk_pages
    from citebot.pdf_text import extract_pages, is_text_page, open_pdf, page_count

    docs = []
    for path in paths:
        data = path.read_bytes()
        pages = [p for p in extract_pages(data, 0, page_count(open_pdf(data), 10_000)) if is_text_page(p)]
        docs.append((path.stem, chunk_pages(path.stem, pages, chunk_chars, overlap)))
    return docs


def _queries(n: int) -> list[str]:
    import json

    labelled = json.loads((Path(__file__).with_name("labelled_questions.json")).read_text())["questions"]
    questions = [q["question"] for q in labelled]
    return [questions[i % len(questions)] for i in range(n)]


class Grower:
    def __init__(self, store: Any, docs: list[tuple[str, list[Any]]], vectors: dict[str, list[float]]) -> None:
        self.store = store
        self.docs = docs
        self.vectors = vectors
        self.count = 0
        self.copies = 0
        self.documents = 0
        self.store_s = 0.0

    def grow_to(self, target: int) -> None:
        import numpy

        from citebot.domain import Chunk, Document

        pending: list[tuple[Chunk, list[float], Document]] = []
        while self.count < target:
            title, chunks = self.docs[self.documents % len(self.docs)]
            doc_id = f"bench-{self.documents:06d}"
            take = chunks[: target - self.count]
            document = Document(
                document_id=doc_id,
                title=f"{title} (copy {self.documents // len(self.docs)})",
                pages=take[-1].page_end,
                added_by="bench",
                filename=f"{title}.pdf",
                scopes=(PAPERS_SCOPE.key,),
                status="ingesting",
            )
            self.store.begin_document(document, attempt="")
            noise = numpy.random.default_rng(self.documents).normal(
                0, 0.02, (len(take), len(next(iter(self.vectors.values()))))
            )
            for c, eps in zip(take, noise):
                v = numpy.asarray(self.vectors[c.text]) + (eps if self.documents >= len(self.docs) else 0)
                pending.append(
                    (
                        Chunk(doc_id, c.index, c.text, c.page_start, c.page_end),
                        (v / numpy.linalg.norm(v)).tolist(),
                        document,
                    )
                )
            self.count += len(take)
            self.documents += 1
            self._mark_ready(doc_id, len(take))
            if len(pending) >= BATCH:
                self._flush(pending)
                pending = []
        if pending:
            self._flush(pending)

    def _flush(self, pending: list[Any]) -> None:
        began = time.perf_counter()
        for document in {id(p[2]): p[2] for p in pending}.values():
            mine = [p for p in pending if p[2] is document]
            self.store.store_chunks([p[0] for p in mine], [p[1] for p in mine], document, attempt="")
        self.store_s += time.perf_counter() - began

    def _mark_ready(self, doc_id: str, chunks: int) -> None:
        from datetime import datetime

        from citebot.store import object_id

        self.store.documents.data.update(
            uuid=object_id("doc", doc_id), properties={"status": "ready", "chunks": chunks, "updated_at": datetime.now(UTC)}
        )


def _time(fn: Any, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        began = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - began) * 1000)
    return out


def run(env: BenchEnv) -> dict[str, Any]:
    from weaviate.classes.query import Filter, HybridFusion, MetadataQuery

    from citebot.store import SEARCHED_PROPERTIES
    from dataflows.app import Citebot
    from tests.standins.openai_server import embed

    sizes = QUICK_SIZES if env.quick else SIZES
    n_queries = 60 if env.quick else 300
    prefix = env.prefix("Retrieval")
    settings = env.settings(prefix, "standin")
    log("retrieval: chunking the corpus and embedding each distinct chunk once")
    docs = _corpus(env.papers() + [BOOK], settings.chunk_chars, settings.chunk_overlap_chars)
    texts = {c.text for _, chunks in docs for c in chunks}
    vectors = {t: embed(t) for t in texts}
    log(f"  {sum(len(c) for _, c in docs)} chunks, {len(texts)} distinct")
    out: dict[str, Any] = {"distinct_chunks": len(texts), "queries_per_size": n_queries, "sizes": {}}
    with Citebot(settings) as bot:
        grower = Grower(bot.store, docs, vectors)
        top_k = settings.top_k
        for size in sizes:
            began = time.perf_counter()
            grower.grow_to(size)
            build_s = time.perf_counter() - began
            log(
                f"retrieval: {grower.count} chunks in {grower.documents} documents (built in {build_s:.1f}s, "
                f"{grower.store_s:.1f}s of it in store_chunks so far)"
            )
            queries = _queries(n_queries)
            doc_ids = [d.document_id for d in bot.documents(PAPERS_SCOPE)]
            assert len(doc_ids) == grower.documents, (len(doc_ids), grower.documents)
            qvec = {q: embed(q) for q in set(queries)}

            def ours(q: str) -> None:
                hits = bot.retrieve(q, PAPERS_SCOPE)
                assert hits, q

            def weaviate_only(q: str) -> None:
                bot.store.chunks.query.hybrid(
                    query=q,
                    vector=qvec[q],
                    alpha=settings.alpha,
                    limit=max(settings.rerank_candidates, top_k * 2),
                    fusion_type=HybridFusion.RELATIVE_SCORE,
                    query_properties=SEARCHED_PROPERTIES,
                    filters=Filter.by_property("document_id").contains_any(doc_ids),
                    return_metadata=MetadataQuery(score=True),
                    include_vector=True,
                )

            def weaviate_plain(q: str) -> None:  # no filter, no vectors returned: the floor
                bot.store.chunks.query.hybrid(
                    query=q,
                    vector=qvec[q],
                    alpha=settings.alpha,
                    limit=max(settings.rerank_candidates, top_k * 2),
                    fusion_type=HybridFusion.RELATIVE_SCORE,
                    query_properties=SEARCHED_PROPERTIES,
                    return_metadata=MetadataQuery(score=True),
                )

            for fn in (ours, weaviate_only, weaviate_plain):  # warm caches and connections
                _time(fn, queries[:20])
            # Interleave the two measurements in rounds so drift affects both alike.
            mine: list[float] = []
            theirs: list[float] = []
            plain: list[float] = []
            for start in range(0, len(queries), 20):
                part = queries[start : start + 20]
                mine += _time(ours, part)
                theirs += _time(weaviate_only, part)
                plain += _time(weaviate_plain, part)
            # Where our time goes: one instrumented pass over the Hamilton nodes.
            nodes: dict[str, float] = {}
            for q in queries[:50]:
                bot.timer.reset()
                bot.retrieve(q, PAPERS_SCOPE)
                for name, seconds in bot.timer.timings.items():
                    nodes[name] = nodes.get(name, 0.0) + seconds * 1000 / 50
            row = {
                "chunks": grower.count,
                "documents": grower.documents,
                "build_s": round(build_s, 1),
                "retrieve_p50_ms": round(pct(mine, 50), 2),
                "retrieve_p95_ms": round(pct(mine, 95), 2),
                "weaviate_p50_ms": round(pct(theirs, 50), 2),
                "weaviate_p95_ms": round(pct(theirs, 95), 2),
                "weaviate_nofilter_p50_ms": round(pct(plain, 50), 2),
                "overhead_p50": round(pct(mine, 50) / pct(theirs, 50), 2),
                "overhead_p95": round(pct(mine, 95) / pct(theirs, 95), 2),
                "node_mean_ms": {k: round(v, 2) for k, v in nodes.items()},
            }
            log(f"  {row}")
            out["sizes"][str(size)] = row
    return out
