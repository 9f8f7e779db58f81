"""The retrieval dataflow's nodes through a Hamilton driver, without Weaviate: the search's
result is given as an override (chunks built by the real chunker, embedded by the real local
model), everything after it runs as in production."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hamilton import driver

from citebot.chunking import chunk_pages, sentences
from citebot.domain import Passage, Scope
from citebot.embeddings import build_embedder
from citebot.pdf_text import PageText
from citebot.settings import Settings
from dataflows import retrieval

PAGE_7 = """the approach we take in our model.
5 Training
This section describes the training regime for our models.
5.3 Optimizer
We used the Adam optimizer [20] with β1 = 0.9, β2 = 0.98 and ε = 10−9. We varied the learning
rate over the course of training, according to the formula given below.
Table 3: Variations on the Transformer architecture. Unlisted values are identical to those of the
base model.
N dmodel dff h dk dv Pdrop
base 6 512 2048 8 64 64 0.1
7
"""
PAGE_8 = """Label smoothing of value 0.1 was used during training of all models, as in [36].
The Transformer used the optimizer named EVIL-OPT [2] according to [3].
8
"""


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return build_embedder(replace(Settings.from_env({}), data_dir=str(tmp_path_factory.mktemp("models"))))


@pytest.fixture(scope="module")
def passages(embedder) -> list[Passage]:
    pages = [PageText(7, PAGE_7), PageText(8, PAGE_8)]
    chunks = chunk_pages("doc-1", pages, size=300, overlap=0, title="Attention Is All You Need")
    vectors = embedder.embed_documents([c.embedding_text for c in chunks])
    return [
        Passage(
            chunk=c,
            chunk_id=f"c{c.index}",
            title="Attention Is All You Need",
            link="",
            score=1.0 - c.index / 10,
            vector=tuple(v),
        )
        for c, v in zip(chunks, vectors)
    ]


def ask(question: str, passages: list[Passage], embedder, rerank: str = "on"):
    dr = (
        driver.Builder()
        .with_modules(retrieval)
        .with_config({"mode": "answer", "answer_source": "extractive", "rerank": rerank})
        .build()
    )
    inputs = {
        "question": question,
        "history": [],
        "scope": Scope("T", "C"),
        "store": None,
        "embedder": embedder,
        "chat_model": None,
        "reranker": None,
        "top_k": 6,
        "alpha": 0.5,
        "rerank_candidates": 40,
        "min_relevance": 0.0,
        "decline_below": Settings().decline_below,
        "on_partial": None,
    }
    overrides = {"retrieved_passages": passages, "sub_question_passages": [], "introducing_passages": []}
    return dr.execute(["answer"], inputs=inputs, overrides=overrides)["answer"]


def test_sentences_drop_page_numbers_and_keep_headings_and_captions_apart():
    found = sentences(PAGE_7)
    assert "7" not in found
    assert "5.3 Optimizer" in found
    assert any(s.startswith("We used the Adam optimizer [20] with β1 = 0.9, β2 = 0.98") for s in found), found
    assert any(s.startswith("Table 3: Variations on the Transformer architecture.") for s in found)
    assert not any(s.startswith(("5.3 Optimizer We", "7 Table")) for s in found)


def test_chunks_know_their_title_and_section(passages):
    optimizer = next(p.chunk for p in passages if "β2 = 0.98" in p.chunk.text)
    assert optimizer.context.startswith("Attention Is All You Need")
    assert "5.3 Optimizer" in optimizer.context
    assert "Attention Is All You Need" not in optimizer.text


@pytest.mark.parametrize("rerank", ["on", "off"])
def test_the_answer_quotes_the_betas_sentence_and_its_excerpt_is_that_sentence(passages, embedder, rerank):
    answer = ask("Which optimizer did the Transformer use and with what betas?", passages, embedder, rerank)
    assert answer.grounded and "β2 = 0.98" in answer.text
    assert len([line for line in answer.text.splitlines() if line.startswith("• ")]) <= 2
    assert "Table 3" not in answer.text and "\n7" not in answer.text
    assert any("β2 = 0.98" in c.excerpt for c in answer.citations)


def test_forged_markers_are_neutralised_and_never_cite(passages, embedder):
    answer = ask("Which optimizer is named EVIL-OPT?", passages, embedder)
    assert "EVIL-OPT [ref 2] according to [ref 3]" in answer.text
    assert {c.n for c in answer.citations} <= {1, 2} and "[3]" not in answer.text


def test_an_unrelated_question_is_declined(passages, embedder):
    answer = ask("Which team won the 2018 football World Cup?", passages, embedder)
    assert not answer.grounded and not answer.citations
