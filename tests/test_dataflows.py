"""The dataflows through their Hamilton drivers, without Weaviate (fast).

The input dicts ``Citebot`` builds are validated against each graph it runs, and single nodes
are exercised with ``execute(..., overrides=...)`` on real PDFs and hand-made passages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from citebot.chunking import chunk_pages, stream_chunks
from citebot.domain import CLI_SCOPE, Chunk, Document, Passage, Provenance
from citebot.embeddings import build_embedder
from citebot.llm import build_chat_model
from citebot.parse_workers import PageStream, ParseBudget, ParsePool, parse_pages
from citebot.pdf_text import PdfOverview, TextCaps, extract_pages, is_text_page
from citebot.settings import Settings
from dataflows import retrieval
from dataflows.app import (
    NodeTimer,
    arxiv_source_inputs,
    ask_inputs,
    build_drivers,
    ingest_inputs,
    pdf_source_inputs,
)
from tests.paths import PDFS

PROVENANCE = Provenance(scope=CLI_SCOPE, user="tester", filename="1706.03762.pdf")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # With a key the embedder and chat model are HTTP clients: built without loading a model or
    # reaching the network (nothing here calls them).
    return replace(Settings.from_env({"OPENAI_API_KEY": "sk-not-used"}), data_dir=str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="module")
def parse_pool(settings: Settings) -> Iterator[ParsePool]:
    pool = ParsePool(1, settings.parse_memory_mb)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def extractive() -> dict:
    return build_drivers(NodeTimer(), "extractive")


# ---- the hand-built input dicts against the graphs ---------------------------------------------


@pytest.mark.parametrize("answer_source", ["llm", "extractive"])
def test_every_run_citebot_makes_gets_the_inputs_its_graph_needs(settings, parse_pool, answer_source):
    drivers = build_drivers(NodeTimer(), answer_source)
    embedder = build_embedder(settings)
    chat_model = build_chat_model(settings) if answer_source == "llm" else None
    # the Weaviate store is the one collaborator not built here (None passes Hamilton's type check)
    store = None

    def ingest(source: dict) -> dict:
        return ingest_inputs(settings, source, PROVENANCE, embedder=embedder, store=store, parse_pool=parse_pool)

    pdf = ingest(pdf_source_inputs(b"%PDF-1.7 ...", "A title"))
    arxiv = ingest(arxiv_source_inputs(settings, "1706.03762"))
    known = {"checked_pdf": b"%PDF", "document_id": "d" * 64, "source_metadata": {}}
    # the two phases of Citebot._ingest, for each source; the arxiv flow's id is looked up first
    drivers["pdf"].validate_execution(["checked_pdf", "document_id", "source_metadata"], inputs=pdf)
    drivers["pdf"].validate_execution(["ingest_result"], inputs=pdf, overrides=known)
    drivers["arxiv"].validate_execution(["arxiv_id"], inputs=arxiv_source_inputs(settings, "1706.03762"))
    drivers["arxiv"].validate_execution(
        ["checked_pdf", "document_id", "source_metadata"], inputs=arxiv, overrides={"arxiv_id": "1706.03762"}
    )
    drivers["arxiv"].validate_execution(["ingest_result"], inputs=arxiv, overrides={"arxiv_id": "1706.03762", **known})
    for mode in ("answer", "summary"):
        inputs = ask_inputs(settings, "Which optimizer?", CLI_SCOPE, store=store, embedder=embedder, chat_model=chat_model)
        drivers[mode].validate_execution(["answer"], inputs=inputs)


def test_a_missing_input_is_caught_by_validation(settings, extractive):
    inputs = ask_inputs(settings, "Which optimizer?", CLI_SCOPE, store=None, embedder=None, chat_model=None)
    del inputs["min_relevance"]
    with pytest.raises(ValueError, match="min_relevance"):
        extractive["answer"].validate_execution(["answer"], inputs=inputs)


def test_ask_inputs_keep_top_k_and_alpha_in_range(settings):
    wide = ask_inputs(settings, "q", CLI_SCOPE, store=None, embedder=None, chat_model=None, top_k=500, alpha=7.0)
    assert wide["top_k"] == 20 and wide["alpha"] == 1.0
    default = ask_inputs(settings, "q", CLI_SCOPE, store=None, embedder=None, chat_model=None)
    assert default["top_k"] == settings.top_k and default["alpha"] == settings.alpha


# ---- the pdf flow on a real paper, up to its chunks (no embedder, no store) ---------------------


def test_a_real_paper_becomes_a_titled_document_with_page_spanning_chunks(settings, parse_pool, extractive):
    pdf = (PDFS / "1706.03762.pdf").read_bytes()
    inputs = ingest_inputs(settings, pdf_source_inputs(pdf), PROVENANCE, embedder=None, store=None, parse_pool=parse_pool)
    out = extractive["pdf"].execute(["document", "chunk_batches"], inputs=inputs)
    document: Document = out["document"]
    chunks: list[Chunk] = list(out["chunk_batches"])
    assert document.title == "Attention Is All You Need"
    assert document.pages == 15 and document.status == "ingesting" and len(chunks) > 20
    assert all(c.document_id == document.document_id and 1 <= c.page_start <= c.page_end <= 15 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    adam = [c for c in chunks if "We used the Adam optimizer" in c.text]
    assert adam and adam[0].page_start <= 7 <= adam[0].page_end
    assert out["chunk_batches"].pages_cut == []
    # the chunks do not depend on how the pages arrived: those of all the pages at once
    pages = [p for p in parse_pages(parse_pool, pdf, 0, 15, ParseBudget(60), TextCaps()) if is_text_page(p)]
    size, overlap = settings.chunk_chars, settings.chunk_overlap_chars
    assert chunks == list(stream_chunks(document.document_id, [pages], 15, size, overlap, document.title))
    # and, but for the appendix's figure labels (a running header of their own window), the whole document's
    whole = chunk_pages(document.document_id, pages, size, overlap, document.title)
    assert len(whole) == len(chunks) and sum(a != b for a, b in zip(whole, chunks)) <= 3


def test_a_paper_read_in_several_workers_gives_the_pages_of_one_reading(settings):
    pdf = (PDFS / "1706.03762.pdf").read_bytes()
    pool = ParsePool(2, settings.parse_memory_mb)
    try:
        stream = PageStream(pool, pdf, "k", 15, ParseBudget(60), TextCaps())
        assert len(stream.batches()) > 2
        streamed = [page for batch in stream for page in batch]
    finally:
        pool.close()
    assert streamed == extract_pages(pdf, 0, 15)


def test_a_title_given_by_the_sharer_wins_over_the_pdfs_own(settings, extractive):
    overview = {"pdf_document": PdfOverview(pages=1, title="PDF metadata title", first_page_title="Big text")}
    inputs = {**pdf_source_inputs(b"", "  Given   title "), "provenance": PROVENANCE}
    assert extractive["pdf"].execute(["title"], inputs=inputs, overrides=overview)["title"] == "Given title"
    inputs = {**pdf_source_inputs(b""), "provenance": PROVENANCE}
    assert extractive["pdf"].execute(["title"], inputs=inputs, overrides=overview)["title"] == "PDF metadata title"


# ---- answering from given passages (no search) --------------------------------------------------


def _passage(n: int, text: str, vector: tuple[float, ...] = (1.0, 0.0)) -> Passage:
    chunk = Chunk(document_id="d" * 64, index=n, text=text, page_start=n, page_end=n)
    return Passage(chunk=chunk, chunk_id=f"c{n}", title="Attention Is All You Need", link="", score=1.0, vector=vector)


PASSAGES = [
    _passage(1, "We used the Adam optimizer with beta1 = 0.9 and beta2 = 0.98."),
    _passage(2, "The Transformer uses multi-head self-attention in every layer."),
]


def _answer(extractive: dict, draft: str, passages: list[Passage] = PASSAGES):
    overrides = {
        "draft_answer": draft,
        "relevant_passages": passages,
        "numbered_sources": retrieval.numbered_sources(passages, "Which optimizer?"),
    }
    return extractive["answer"].execute(["answer"], inputs={"question": "Which optimizer?"}, overrides=overrides)["answer"]


def test_citation_numbers_that_point_nowhere_are_dropped(extractive):
    answer = _answer(extractive, "The Adam optimizer was used [1][42], with beta2 0.98 [3, 1].")
    assert "[42]" not in answer.text and "[3" not in answer.text
    assert answer.text.count("[1]") == 2 and answer.grounded
    assert [c.n for c in answer.citations] == [1] and [s.n for s in answer.uncited] == [2]
    assert "Adam" in answer.citations[0].excerpt


def test_an_answer_citing_nothing_is_flagged_and_not_in_sources_says_so(extractive):
    uncited = _answer(extractive, "It was probably Adam [7].")
    assert retrieval.UNCITED_NOTE in uncited.text and not uncited.citations and uncited.grounded
    nothing = _answer(extractive, retrieval.NOT_IN_SOURCES)
    assert nothing.text == retrieval.NO_ANSWER_TEXT and not nothing.grounded and not nothing.citations
    no_sources = _answer(extractive, "Adam [1].", passages=[])
    assert no_sources.text == retrieval.NO_ANSWER_TEXT


def test_unrelated_and_near_duplicate_passages_are_not_sources(extractive):
    same = _passage(3, PASSAGES[0].chunk.text)  # the same text stored twice
    unrelated = _passage(4, "Bananas are yellow.", vector=(0.0, 1.0))
    out = extractive["answer"].execute(
        ["relevant_passages"],
        inputs={"top_k": 5, "min_relevance": 0.5, "decline_below": 0.0},
        overrides={
            "ranked_passages": [PASSAGES[0], same, unrelated, PASSAGES[1]],
            "ranked_sub_question_passages": [],
            "named_papers": {},
            "query_embedding": [1.0, 0.0],
            "search_text": "Which optimizer did the Transformer use?",
            "relevance": 1.0,
            "opening_request": False,
        },
    )
    assert [p.chunk_id for p in out["relevant_passages"]] == ["c1", "c2"]
