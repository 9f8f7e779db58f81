"""The values that cross boundaries: between dataflows, the CLI, the Slack bot and benchmarks."""

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


@dataclass
class IngestResult:
    document_id: str
    title: str
    authors: list[str]
    pages: int
    chunks: int
    already_present: bool
    seconds: float
    link: str = ""
    arxiv_id: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ArxivOutcome:
    """One requested arXiv id: either ingested (result) or a specific error for that id."""

    requested_id: str
    result: IngestResult | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Citation:
    n: int
    document_id: str
    title: str
    page_start: int
    page_end: int
    excerpt: str
    score: float
    link: str = ""
    chunk_id: str = ""

    @property
    def pages(self) -> str:
        if self.page_start == self.page_end:
            return f"p. {self.page_start}"
        return f"pp. {self.page_start}-{self.page_end}"


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    uncited: list[Citation]
    mode: Mode = "answer"
    grounded: bool = True  # False: nothing visible here answers the question

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DocumentInfo:
    document_id: str
    title: str
    source: str
    pages: int
    chunks: int
    added_by: str
    added_at: str
    link: str = ""
    arxiv_id: str = ""
    authors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
