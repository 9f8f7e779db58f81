"""Ingestion dataflow: PDF bytes → pages → chunks → embeddings → stored in Weaviate.

Hamilton module: every public function is a node named after what it returns; its
parameters are the nodes (or inputs) it needs. The arXiv dataflow cuts in at ``pdf_bytes``
and ``source_metadata``.

Inputs: pdf_bytes, provenance, max_pdf_bytes, max_pages, chunk_chars, chunk_overlap_chars,
max_page_chars, max_chunks, embedder, store, parse_pool (a ParsePool), parse_budget (this
document's ParseBudget), ingest_claim (an IngestClaim), source_metadata ({} for plain PDFs).

Everything that reads the PDF's structure or text runs in parse workers within the document's
time budget and the workers' memory cap (citebot/parse_workers.py); the bot's process only
handles bytes, short metadata strings and page texts within the text caps.

Streaming: ``page_batches`` → ``readable_page_batches`` → ``chunk_batches`` are lazy streams.
``chunk_batches`` is drained by a background thread as the workers read the pages, and
``stored_document`` embeds and stores its chunks batch by batch while later pages are still
being read: parsing and chunking hide behind embedding and storing.
"""

from __future__ import annotations

import array
import concurrent.futures
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from hamilton.function_modifiers import tag

from citebot.chunking import stream_chunks
from citebot.domain import Chunk, Document, IngestResult, Provenance
from citebot.embeddings import Embedder
from citebot.errors import CitebotError, NoExtractableText, StoreFailed
from citebot.parse_workers import PageStream, ParseBudget, ParsePool, document_key, read_overview
from citebot.pdf_text import PageText, PdfOverview, TextCaps, check_pdf_bytes, is_text_page
from citebot.read_ahead import ReadAhead
from citebot.store import Store
from citebot.text_hygiene import clean_field, clean_names

# Chunks per embedding request / store call (embedding of batch i+1 overlaps storing batch i).
CHUNKS_PER_BATCH = 64


NO_TEXT = "The PDF has no extractable text (it looks scanned or image-only). Run it through OCR and share the result."


class AlreadyIndexed(CitebotError):
    """Raised by ``IngestClaim.wait`` when another ingest has made the document ready meanwhile."""

    def __init__(self, document: Document) -> None:
        super().__init__("That document is indexed already.")
        self.document = document


class IngestClaim:
    """The right to write a document. ``Citebot`` passes its claim of the document's ingest lease,
    made while the PDF is read and the first chunks embedded: ``wait()`` returns once it is held,
    or raises ``AlreadyIndexed``. This base class holds at once (one ingest at a time: tests, tools)."""

    def wait(self) -> None:
        return None


def checked_pdf(pdf_bytes: bytes, max_pdf_bytes: int) -> bytes:
    """The PDF bytes, once size and signature are acceptable."""
    check_pdf_bytes(pdf_bytes, max_pdf_bytes)
    return pdf_bytes


def document_id(checked_pdf: bytes) -> str:
    """A document's identity: the SHA-256 of its bytes (the key parse workers know it by)."""
    return document_key(checked_pdf)


def pdf_document(
    checked_pdf: bytes, document_id: str, max_pages: int, parse_pool: ParsePool, parse_budget: ParseBudget
) -> PdfOverview:
    """The PDF's page count, metadata and first-page title, read in a parse worker (raises for
    encrypted, corrupt, over-long, too slow or too memory-hungry files); the worker keeps the
    PDF open for the first pages."""
    return read_overview(parse_pool, checked_pdf, max_pages, parse_budget, key=document_id)


def page_total(pdf_document: PdfOverview) -> int:
    """Number of pages (within ``max_pages``)."""
    return pdf_document.pages


def text_caps(max_page_chars: int, max_chunks: int, chunk_chars: int) -> TextCaps:
    """How much text a page and a document may bring."""
    return TextCaps(page_chars=max_page_chars, chunks=max_chunks, chunk_chars=chunk_chars)


def page_batches(
    checked_pdf: bytes,
    document_id: str,
    page_total: int,
    parse_pool: ParsePool,
    parse_budget: ParseBudget,
    text_caps: TextCaps,
) -> PageStream:
    """Text of every page, NFKC-normalised with hyphenation joined, in page order a batch at a
    time: page ranges parsed in worker processes (each keeps the PDF open) within the document's
    time budget and the text caps. Lazy: read as it is iterated."""
    return PageStream(parse_pool, checked_pdf, document_id, page_total, parse_budget, text_caps)


def readable_page_batches(page_batches: PageStream) -> Iterator[list[PageText]]:
    """Pages with real text, each distinct text once (the first page that has it); a PDF
    without any (scanned, image-only) is refused once every page is read."""
    seen: set[str] = set()
    for batch in page_batches:
        pages = []
        for page in batch:
            if is_text_page(page) and page.text not in seen:
                seen.add(page.text)
                pages.append(page)
        yield pages
    if not seen:
        raise NoExtractableText(NO_TEXT)


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


class ChunkStream(ReadAhead[Chunk]):
    """A document's chunks in order, made ahead by a background thread from its pages; after the
    last one, ``pages_cut`` names the pages cut to the page cap and ``read_seconds`` is the time
    from the first page asked for to the last chunk made."""

    def __init__(self, chunks_of: Callable[[ChunkStream], Iterator[Chunk]], on_close: Callable[[], None]) -> None:
        self.pages_cut: list[int] = []
        self.read_seconds = 0.0
        super().__init__(chunks_of(self), name="chunking", on_close=on_close)


def chunk_batches(
    document_id: str,
    readable_page_batches: Iterator[list[PageText]],
    page_batches: PageStream,
    page_total: int,
    chunk_chars: int,
    chunk_overlap_chars: int,
    title: str,
    text_caps: TextCaps,
) -> ChunkStream:
    """Overlapping chunks of about ``chunk_chars`` characters, each with its page span and its
    context (the document title and nearest section heading, searched and embedded with it),
    made in a background thread as the pages are read (running headers per window of pages,
    ``citebot.chunking.HEADER_WINDOW_PAGES``). More chunks than the cap are refused as soon as
    they are counted; ``stored_document`` takes them a batch at a time."""

    def chunks_of(stream: ChunkStream) -> Iterator[Chunk]:
        began = time.perf_counter()

        def pages() -> Iterator[list[PageText]]:
            for batch in readable_page_batches:
                stream.pages_cut.extend(page.number for page in batch if page.cut_from)
                yield batch

        for chunk in stream_chunks(document_id, pages(), page_total, chunk_chars, chunk_overlap_chars, title):
            if text_caps.chunks and chunk.index >= text_caps.chunks:
                raise text_caps.too_much(counted_chunks=True)
            yield chunk
        stream.read_seconds = time.perf_counter() - began

    return ChunkStream(chunks_of, on_close=page_batches.cancel)


def document(
    document_id: str,
    title: str,
    authors: list[str],
    page_total: int,
    provenance: Provenance,
    source_metadata: dict[str, Any],
) -> Document:
    """The document as it will be stored (``ingesting``, with no chunks, until every chunk is in
    Weaviate)."""
    return Document(
        document_id=document_id,
        title=title,
        authors=tuple(authors),
        source=provenance.source,
        pages=page_total,
        chunks=0,
        added_by=provenance.user,
        link=source_metadata.get("link") or provenance.link,
        arxiv_id=source_metadata.get("arxiv_id", ""),
        filename=clean_field(provenance.filename),
        scopes=(provenance.scope.key,),
        status="ingesting",
    )


@dataclass(frozen=True)
class StoredDocument:
    """A document now ready in Weaviate, the seconds spent (``read``: parsing and chunking, in the
    background; ``wait``: embedding waiting for chunks; ``claim``: waiting for the ingest claim
    after the first batch was embedded; ``embed``, ``store``), and the pages whose text was cut to
    the page cap."""

    document: Document
    timings: dict[str, float]
    pages_cut: tuple[int, ...] = ()


@tag(side_effects="weaviate")
def stored_document(
    document: Document, chunk_batches: ChunkStream, embedder: Embedder, store: Store, ingest_claim: IngestClaim
) -> StoredDocument:
    """Embeds and stores every chunk as the chunks come, all or nothing: the document's record is
    written with the first batch, once ``ingest_claim`` is held (the first batch is embedded
    meanwhile), and on any failure (reading a later page included) the partial document is
    removed and the error re-raised."""
    doc_id = document.document_id
    attempt = uuid.uuid4().hex
    timings = {"embed": 0.0, "store": 0.0}
    written: list[tuple[Chunk, array.array]] = []  # for finish_document: float32 vectors, not lists of floats
    began_document = False
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store") as writer:
            pending: concurrent.futures.Future | None = None
            while batch := chunk_batches.take(CHUNKS_PER_BATCH):
                began = time.perf_counter()
                vectors = embedder.embed_documents([r.embedding_text for r in batch])
                timings["embed"] += time.perf_counter() - began
                if not began_document:  # a PDF refused while its first pages are read writes nothing
                    began = time.perf_counter()
                    ingest_claim.wait()
                    timings["claim"] = time.perf_counter() - began
                    store.begin_document(document, attempt)
                    began_document = True
                if pending is not None:
                    timings["store"] += pending.result()
                pending = writer.submit(_timed_store, store, batch, vectors, document, attempt)
                written += ((chunk, array.array("f", vector)) for chunk, vector in zip(batch, vectors))
            if pending is not None:
                timings["store"] += pending.result()
        if not began_document:  # text, but none that makes a chunk (page numbers only)
            raise NoExtractableText(NO_TEXT)
        store.finish_document(doc_id, len(written), written)
    except BaseException as error:
        chunk_batches.close()
        if began_document:
            _remove_quietly(store, doc_id)
        if isinstance(error, CitebotError):
            raise
        if isinstance(error, Exception):
            raise StoreFailed(
                f"Storing the document failed ({type(error).__name__}); it was not indexed. Please try again."
            ) from error
        raise
    ready = replace(document, chunks=len(written), status="ready")
    timings.update(read=chunk_batches.read_seconds, wait=chunk_batches.waited)
    return StoredDocument(ready, timings, tuple(chunk_batches.pages_cut))


def _timed_store(store: Store, batch: list[Chunk], vectors: list[list[float]], document: Document, attempt: str) -> float:
    began = time.perf_counter()
    store.store_chunks(batch, vectors, document, attempt)
    return time.perf_counter() - began


def _remove_quietly(store: Store, doc_id: str) -> None:
    try:
        store.remove_document(doc_id)
    except Exception:  # Weaviate may be down; the 'ingesting' record is cleaned up later
        pass


def ingest_notes(stored_document: StoredDocument, text_caps: TextCaps) -> list[str]:
    """What the user should know about how the document was read (pages cut to the page cap)."""
    cut = stored_document.pages_cut
    if not cut:
        return []
    numbers = ", ".join(str(number) for number in cut[:10]) + (" …" if len(cut) > 10 else "")
    return [
        f"{len(cut)} page(s) had more than {text_caps.page_chars:,} characters of text and were cut to that "
        f"(page {numbers}); the rest of those pages is not searchable."
    ]


def ingest_result(stored_document: StoredDocument, ingest_notes: list[str]) -> IngestResult:
    """The newly indexed document (now ready), the seconds spent embedding and storing, and notes."""
    return IngestResult(
        document=stored_document.document,
        already_present=False,
        timings=dict(stored_document.timings),
        notes=list(ingest_notes),
    )
