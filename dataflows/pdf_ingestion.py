"""Ingestion dataflow: PDF bytes → pages → chunks → embeddings → stored in Weaviate.

Hamilton module: every public function is a node named after what it returns; its
parameters are the nodes (or inputs) it needs. The arXiv dataflow cuts in at ``pdf_bytes``
and ``source_metadata``.

Inputs: pdf_bytes, provenance, max_pdf_bytes, max_pages, chunk_chars, chunk_overlap_chars,
max_page_chars, max_chunks, embedder, store, parse_pool (a ParsePool), parse_budget (this
document's ParseBudget), source_metadata ({} for plain PDFs).

Everything that reads the PDF's structure or text runs in parse workers within the document's
time budget and the workers' memory cap (citebot/parse_workers.py); the bot's process only
handles bytes, short metadata strings and page texts within the text caps.
"""

from __future__ import annotations

import array
import concurrent.futures
import hashlib
import time
import uuid
from dataclasses import replace
from typing import Any

from hamilton.function_modifiers import tag

from citebot.chunking import chunk_pages
from citebot.domain import Chunk, Document, IngestResult, Provenance
from citebot.embeddings import Embedder
from citebot.errors import CitebotError, NoExtractableText, StoreFailed
from citebot.parse_workers import ParseBudget, ParsePool, parse_pages, read_overview
from citebot.pdf_text import PageText, PdfOverview, TextCaps, check_pdf_bytes, is_text_page
from citebot.store import Store
from citebot.text_hygiene import clean_field, clean_names

# Chunks per embedding request / store call (embedding of batch i+1 overlaps storing batch i).
CHUNKS_PER_BATCH = 64


def checked_pdf(pdf_bytes: bytes, max_pdf_bytes: int) -> bytes:
    """The PDF bytes, once size and signature are acceptable."""
    check_pdf_bytes(pdf_bytes, max_pdf_bytes)
    return pdf_bytes


def document_id(checked_pdf: bytes) -> str:
    """A document's identity: the SHA-256 of its bytes."""
    return hashlib.sha256(checked_pdf).hexdigest()


def pdf_document(checked_pdf: bytes, max_pages: int, parse_pool: ParsePool, parse_budget: ParseBudget) -> PdfOverview:
    """The PDF's page count, metadata and first-page title, read in a parse worker (raises for
    encrypted, corrupt, over-long, too slow or too memory-hungry files)."""
    return read_overview(parse_pool, checked_pdf, max_pages, parse_budget)


def page_total(pdf_document: PdfOverview) -> int:
    """Number of pages (within ``max_pages``)."""
    return pdf_document.pages


def text_caps(max_page_chars: int, max_chunks: int, chunk_chars: int) -> TextCaps:
    """How much text a page and a document may bring."""
    return TextCaps(page_chars=max_page_chars, chunks=max_chunks, chunk_chars=chunk_chars)


def extracted_pages(
    checked_pdf: bytes, page_total: int, parse_pool: ParsePool, parse_budget: ParseBudget, text_caps: TextCaps
) -> list[PageText]:
    """Text of every page, NFKC-normalised with hyphenation joined, parsed in worker processes
    (page ranges in parallel) within the document's time budget and the text caps."""
    return parse_pages(parse_pool, checked_pdf, 0, page_total, parse_budget, text_caps)


def readable_pages(extracted_pages: list[PageText]) -> list[PageText]:
    """Pages with real text, each distinct text once (the first page that has it); a PDF
    without any (scanned, image-only) is refused."""
    seen: set[str] = set()
    pages = []
    for page in extracted_pages:
        if is_text_page(page) and page.text not in seen:
            seen.add(page.text)
            pages.append(page)
    if not pages:
        raise NoExtractableText(
            "The PDF has no extractable text (it looks scanned or image-only). Run it through OCR and share the result."
        )
    return pages


def pdf_properties(pdf_document: PdfOverview) -> dict[str, str]:
    """Title and author from the PDF's own metadata (often empty; cleaned and capped)."""
    return {"title": pdf_document.title, "author": pdf_document.author}


def first_page_title(pdf_document: PdfOverview) -> str:
    """The largest upright text on page 1: a paper's title, usually."""
    return pdf_document.first_page_title


def title(
    source_metadata: dict[str, Any], pdf_properties: dict[str, str], first_page_title: str, provenance: Provenance
) -> str:
    """arXiv metadata, else PDF metadata, else the first page's largest text, else the file name."""
    for candidate in (source_metadata.get("title"), pdf_properties.get("title"), first_page_title, provenance.filename):
        cleaned = clean_field(candidate)
        if len(cleaned) >= 3:
            return cleaned
    return "Untitled document"


def authors(source_metadata: dict[str, Any], pdf_properties: dict[str, str]) -> list[str]:
    if source_metadata.get("authors"):
        return clean_names(source_metadata["authors"])
    return clean_names([pdf_properties.get("author") or ""])


def chunks(
    document_id: str, readable_pages: list[PageText], chunk_chars: int, chunk_overlap_chars: int, title: str
) -> list[Chunk]:
    """Overlapping chunks of about ``chunk_chars`` characters, each with its page span and its
    context (the document title and nearest section heading, searched and embedded with it)."""
    return chunk_pages(document_id, readable_pages, chunk_chars, chunk_overlap_chars, title)


def document(
    document_id: str,
    title: str,
    authors: list[str],
    page_total: int,
    chunks: list[Chunk],
    provenance: Provenance,
    source_metadata: dict[str, Any],
    text_caps: TextCaps,
) -> Document:
    """The document as it will be stored (``ingesting`` until every chunk is in Weaviate);
    more chunks than the cap are refused before anything is embedded."""
    if text_caps.chunks and len(chunks) > text_caps.chunks:
        raise text_caps.too_much(len(chunks))
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
        filename=clean_field(provenance.filename),
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
    written: list[tuple[Chunk, array.array]] = []  # for finish_document: float32 vectors, not lists of floats
    store.begin_document(document, attempt)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store") as writer:
            pending: concurrent.futures.Future | None = None
            for start in range(0, len(chunks), CHUNKS_PER_BATCH):
                batch = chunks[start : start + CHUNKS_PER_BATCH]
                began = time.perf_counter()
                vectors = embedder.embed_documents([r.embedding_text for r in batch])
                timings["embed"] += time.perf_counter() - began
                if pending is not None:
                    timings["store"] += pending.result()
                pending = writer.submit(_timed_store, store, batch, vectors, document, attempt)
                written += ((chunk, array.array("f", vector)) for chunk, vector in zip(batch, vectors))
            if pending is not None:
                timings["store"] += pending.result()
        store.finish_document(doc_id, len(chunks), written)
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


def ingest_notes(extracted_pages: list[PageText], text_caps: TextCaps) -> list[str]:
    """What the user should know about how the document was read (pages cut to the page cap)."""
    cut = [page for page in extracted_pages if page.cut_from]
    if not cut:
        return []
    numbers = ", ".join(str(page.number) for page in cut[:10]) + (" …" if len(cut) > 10 else "")
    return [
        f"{len(cut)} page(s) had more than {text_caps.page_chars:,} characters of text and were cut to that "
        f"(page {numbers}); the rest of those pages is not searchable."
    ]


def ingest_result(document: Document, stored_document: dict[str, float], ingest_notes: list[str]) -> IngestResult:
    """The newly indexed document (now ready), the seconds spent embedding and storing, and notes."""
    return IngestResult(
        document=replace(document, status="ready"),
        already_present=False,
        timings=dict(stored_document),
        notes=list(ingest_notes),
    )
