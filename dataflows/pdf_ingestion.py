"""Ingestion dataflow: PDF bytes → pages → chunks → embeddings → stored in Weaviate.

Hamilton module: every public function is a node named after what it returns; its
parameters are the nodes (or inputs) it needs. The arXiv dataflow cuts in at ``pdf_bytes``
and ``source_metadata``.

Inputs: pdf_bytes, provenance, max_pdf_bytes, max_pages, chunk_chars, chunk_overlap_chars,
embedder, store, parse_pool (an Executor or None), source_metadata ({} for plain PDFs).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
import unicodedata
import uuid
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

from hamilton.function_modifiers import tag
from pypdf import PdfReader

from citebot.chunking import chunk_pages
from citebot.domain import Chunk, Document, IngestResult, Provenance
from citebot.embeddings import Embedder
from citebot.errors import CitebotError, NoExtractableText, StoreFailed
from citebot.pdf_text import (
    PageText,
    check_pdf_bytes,
    extract_pages,
    is_text_page,
    largest_text_on_first_page,
    open_pdf,
    page_count,
    pdf_info,
)
from citebot.store import Store

# PDFs with at least this many pages are parsed in worker processes, in about this many
# page ranges (more ranges than workers balances uneven pages).
MIN_PAGES_FOR_POOL = 8
PARSE_TASKS = 6
# Chunks per embedding request / store call (embedding of batch i+1 overlaps storing batch i).
CHUNKS_PER_BATCH = 64


def checked_pdf(pdf_bytes: bytes, max_pdf_bytes: int) -> bytes:
    """The PDF bytes, once size and signature are acceptable."""
    check_pdf_bytes(pdf_bytes, max_pdf_bytes)
    return pdf_bytes


def document_id(checked_pdf: bytes) -> str:
    """A document's identity: the SHA-256 of its bytes."""
    return hashlib.sha256(checked_pdf).hexdigest()


def pdf_document(checked_pdf: bytes) -> PdfReader:
    """The parsed PDF (raises for encrypted or corrupt files)."""
    return open_pdf(checked_pdf)


def page_total(pdf_document: PdfReader, max_pages: int) -> int:
    """Number of pages (raises for over-long PDFs)."""
    return page_count(pdf_document, max_pages)


def extracted_pages(checked_pdf: bytes, page_total: int, parse_pool: Executor | None = None) -> list[PageText]:
    """Text of every page, NFKC-normalised with hyphenation joined; page ranges are parsed in
    parallel worker processes when a pool is given and the PDF is long enough to pay for it."""
    if parse_pool is None or page_total < MIN_PAGES_FOR_POOL:
        return extract_pages(checked_pdf, 0, page_total)
    tasks = min(PARSE_TASKS, page_total // 4)
    bounds = [round(i * page_total / tasks) for i in range(tasks + 1)]
    ranges = list(zip(bounds, bounds[1:]))
    futures = [parse_pool.submit(extract_pages, checked_pdf, start, end) for start, end in ranges]
    return [page for future in futures for page in future.result()]


def readable_pages(extracted_pages: list[PageText]) -> list[PageText]:
    """Pages with real text; a PDF without any (scanned, image-only) is refused."""
    pages = [page for page in extracted_pages if is_text_page(page)]
    if not pages:
        raise NoExtractableText(
            "The PDF has no extractable text (it looks scanned or image-only). Run it through OCR and share the result."
        )
    return pages


def pdf_properties(pdf_document: PdfReader) -> dict[str, str]:
    """Title and author from the PDF's own metadata (often empty)."""
    return pdf_info(pdf_document)


def first_page_title(pdf_document: PdfReader) -> str:
    """The largest upright text on page 1: a paper's title, usually."""
    return largest_text_on_first_page(pdf_document)


def title(
    source_metadata: dict[str, Any], pdf_properties: dict[str, str], first_page_title: str, provenance: Provenance
) -> str:
    """arXiv metadata, else PDF metadata, else the first page's largest text, else the file name."""
    for candidate in (source_metadata.get("title"), pdf_properties.get("title"), first_page_title, provenance.filename):
        if candidate and len(candidate.strip()) >= 3:
            return unicodedata.normalize("NFKC", " ".join(candidate.split()))[:300]
    return "Untitled document"


def authors(source_metadata: dict[str, Any], pdf_properties: dict[str, str]) -> list[str]:
    if source_metadata.get("authors"):
        return list(source_metadata["authors"])
    return [pdf_properties["author"]] if pdf_properties.get("author") else []


def chunks(document_id: str, readable_pages: list[PageText], chunk_chars: int, chunk_overlap_chars: int) -> list[Chunk]:
    """Overlapping chunks of about ``chunk_chars`` characters, each with its page span."""
    return chunk_pages(document_id, readable_pages, chunk_chars, chunk_overlap_chars)


def document(
    document_id: str,
    title: str,
    authors: list[str],
    page_total: int,
    chunks: list[Chunk],
    provenance: Provenance,
    source_metadata: dict[str, Any],
) -> Document:
    """The document as it will be stored (``ingesting`` until every chunk is in Weaviate)."""
    return Document(
        document_id=document_id,
        title=title,
        authors=tuple(authors),
        source=provenance.source,
        pages=page_total,
        chunks=len(chunks),
        added_by=provenance.user,
        link=source_metadata.get("link") or provenance.link,
        arxiv_id=source_metadata.get("arxiv_id", ""),
        filename=provenance.filename,
        scopes=(provenance.scope.key,),
        status="ingesting",
    )


@tag(side_effects="weaviate")
def stored_document(document: Document, chunks: list[Chunk], embedder: Embedder, store: Store) -> dict[str, float]:
    """Embeds and stores every chunk, all or nothing: on any failure the partial document is
    removed and the error re-raised. Returns the seconds spent embedding and storing."""
    doc_id = document.document_id
    attempt = uuid.uuid4().hex
    timings = {"embed": 0.0, "store": 0.0}
    store.begin_document(document, attempt)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store") as writer:
            pending: concurrent.futures.Future | None = None
            for start in range(0, len(chunks), CHUNKS_PER_BATCH):
                batch = chunks[start : start + CHUNKS_PER_BATCH]
                began = time.perf_counter()
                vectors = embedder.embed_documents([r.text for r in batch])
                timings["embed"] += time.perf_counter() - began
                if pending is not None:
                    timings["store"] += pending.result()
                pending = writer.submit(_timed_store, store, batch, vectors, document, attempt)
            if pending is not None:
                timings["store"] += pending.result()
        store.finish_document(doc_id, len(chunks))
    except BaseException as error:
        _remove_quietly(store, doc_id)
        if isinstance(error, CitebotError):
            raise
        if isinstance(error, Exception):
            raise StoreFailed(
                f"Storing the document failed ({type(error).__name__}); it was not indexed. Please try again."
            ) from error
        raise
    return timings


def _timed_store(store: Store, batch: list[Chunk], vectors: list[list[float]], document: Document, attempt: str) -> float:
    began = time.perf_counter()
    store.store_chunks(batch, vectors, document, attempt)
    return time.perf_counter() - began


def _remove_quietly(store: Store, doc_id: str) -> None:
    try:
        store.remove_document(doc_id)
    except Exception:  # Weaviate may be down; the 'ingesting' record is cleaned up later
        pass


def ingest_result(document: Document, stored_document: dict[str, float]) -> IngestResult:
    """The newly indexed document (now ready) and the seconds spent embedding and storing."""
    return IngestResult(document=replace(document, status="ready"), already_present=False, timings=dict(stored_document))
