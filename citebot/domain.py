"""The values that cross boundaries: between dataflows, the CLI, the Slack bot and benchmarks.

One typed value per noun: a ``Document``; its ``Chunk``s; a ``Passage`` (a chunk found by a
search); a ``Citation`` (a passage as an answer cites it); the ``Answer``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Source = Literal["slack", "arxiv", "file"]
Mode = Literal["answer", "summary"]


@dataclass(frozen=True)
class Scope:
    """Where a request comes from. A document is visible only in the scopes it was added in."""

    workspace: str
    channel: str

    @property
    def key(self) -> str:
        return f"{self.workspace}/{self.channel}"


CLI_SCOPE = Scope(workspace="local", channel="cli")


@dataclass(frozen=True)
class Provenance:
    """Who added a document, from where, and how to link back to it."""

    scope: Scope
    user: str = ""
    source: Source = "file"
    link: str = ""
    filename: str = ""


@dataclass(frozen=True)
class Document:
    """One indexed document, as Weaviate stores it and as every front end lists it."""

    document_id: str  # SHA-256 of the PDF bytes
    title: str
    authors: tuple[str, ...] = ()
    source: Source = "file"
    pages: int = 0
    chunks: int = 0
    added_by: str = ""
    added_at: str = ""  # ISO 8601, UTC
    link: str = ""
    arxiv_id: str = ""
    filename: str = ""
    scopes: tuple[str, ...] = ()  # the Scope.key of every place it was added in
    status: Literal["ingesting", "ready"] = "ready"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A passage of a document's text with the pages it spans (what is embedded and stored)."""

    document_id: str
    index: int
    text: str
    page_start: int
    page_end: int
    context: str = ""  # document title and section heading: searched and embedded, never quoted

    @property
    def embedding_text(self) -> str:
        """What is embedded: the chunk's text under its title and section."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    @property
    def pages(self) -> str:
        if self.page_start == self.page_end:
            return f"p. {self.page_start}"
        return f"pp. {self.page_start}-{self.page_end}"


@dataclass(frozen=True)
class Passage:
    """A chunk found by a search: the chunk, where it is stored, its document's title and link,
    its score for this question, its vector, and its cached summary (summary mode)."""

    chunk: Chunk
    chunk_id: str
    title: str
    link: str
    score: float
    vector: tuple[float, ...] = ()
    summary: str = ""


# The longest excerpt a citation shows (the supporting sentence, cut at a word).
EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Citation:
    """A passage as an answer shows it: its number ``[n]`` and the excerpt that supports the claim."""

    n: int
    passage: Passage
    excerpt: str

    @property
    def document_id(self) -> str:
        return self.passage.chunk.document_id

    @property
    def title(self) -> str:
        return self.passage.title

    @property
    def link(self) -> str:
        return self.passage.link

    @property
    def pages(self) -> str:
        return self.passage.chunk.pages

    def to_dict(self) -> dict[str, Any]:
        chunk = self.passage.chunk
        return {
            "n": self.n,
            "document_id": chunk.document_id,
            "title": self.title,
            "page_start": chunk.page_start,
            "page_end": chunk.page_end,
            "excerpt": self.excerpt,
            "score": round(self.passage.score, 4),
            "link": self.link,
            "chunk_id": self.passage.chunk_id,
        }


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    uncited: list[Citation]
    mode: Mode = "answer"
    grounded: bool = True  # False: nothing visible here answers the question

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "uncited": [c.to_dict() for c in self.uncited],
            "mode": self.mode,
            "grounded": self.grounded,
        }


@dataclass
class IngestResult:
    """The outcome of adding a document to a scope: the document, and whether it was there already."""

    document: Document
    already_present: bool
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how it was read, e.g. pages cut to the page cap

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.document.to_dict(),
            "already_present": self.already_present,
            "seconds": self.seconds,
            "timings": self.timings,
            "notes": self.notes,
        }


@dataclass
class ArxivOutcome:
    """One requested arXiv id: either ingested (result) or a specific error for that id."""

    requested_id: str
    result: IngestResult | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested_id": self.requested_id,
            "result": self.result.to_dict() if self.result else None,
            "error": self.error,
        }
