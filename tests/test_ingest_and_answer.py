"""Core behaviour with the offline defaults: real PDFs, real MiniLM, real Weaviate."""

from __future__ import annotations

import pytest

from citebot.domain import CLI_SCOPE, Provenance, Scope
from tests.paths import PDFS


def test_nine_papers_are_indexed_with_titles_and_pages(corpus):
    assert len(corpus) == 9
    transformer = corpus["1706.03762"]
    assert transformer.document.title == "Attention Is All You Need"
    assert transformer.document.pages == 15 and transformer.document.chunks > 20
    assert corpus["1810.04805"].document.title.startswith("BERT: Pre-training of Deep Bidirectional Transformers")
    assert corpus["1412.6980"].document.title.lower().startswith("adam")  # from the PDF's own metadata
    assert all(r.document.pages > 0 and r.document.chunks > 0 for r in corpus.values())


def test_transformer_optimizer_question_cites_the_page_that_states_it(offline_bot, corpus):
    answer = offline_bot.ask("Which optimizer did the Transformer use and with what betas?", CLI_SCOPE)
    assert answer.grounded
    assert "Adam" in answer.text and "0.98" in answer.text
    cited = [(c.title, c.passage.chunk.page_start, c.passage.chunk.page_end) for c in answer.citations]
    assert any(t == "Attention Is All You Need" and s <= 7 <= e for t, s, e in cited), cited
    assert all(f"[{c.n}]" in answer.text for c in answer.citations)


@pytest.mark.parametrize(
    "question, paper, page, words",
    [
        ("How many parameters does BERT large have?", "1810.04805", 4, ["340M"]),
        (
            "What depth of residual network was evaluated on ImageNet, and how much deeper than VGG?",
            "1512.03385",
            1,
            ["152"],
        ),
        ("How many identical layers are stacked in the Transformer's encoder?", "1706.03762", 3, ["N = 6", "6 identical"]),
        ("Which retriever does RAG use for the non-parametric memory?", "2005.11401", 1, ["DPR", "dense"]),
    ],
)
def test_questions_are_answered_from_the_right_paper(offline_bot, corpus, question, paper, page, words):
    answer = offline_bot.ask(question, CLI_SCOPE, top_k=6)
    titles = {c.title for c in answer.citations}
    assert corpus[paper].document.title in titles, (answer.text, titles)
    assert any(w.lower() in answer.text.lower() for w in words), answer.text


def test_same_bytes_again_are_recognised_without_work(offline_bot, corpus):
    again = offline_bot.ingest_pdf((PDFS / "1706.03762.pdf").read_bytes(), Provenance(scope=CLI_SCOPE))
    assert again.already_present and again.document.document_id == corpus["1706.03762"].document.document_id
    assert again.document.chunks == corpus["1706.03762"].document.chunks
    assert again.seconds < 1.0


def test_another_channel_sees_nothing_until_the_document_is_added_there(offline_bot, corpus):
    elsewhere = Scope("T-other", "C-private")
    answer = offline_bot.ask("Which optimizer did the Transformer use?", elsewhere)
    assert not answer.grounded and not answer.citations
    assert "couldn't find" in answer.text
    assert offline_bot.documents(elsewhere) == []

    added = offline_bot.ingest_pdf((PDFS / "1706.03762.pdf").read_bytes(), Provenance(scope=elsewhere, source="slack"))
    assert added.already_present  # scope extended, nothing re-embedded
    assert [d.title for d in offline_bot.documents(elsewhere)] == ["Attention Is All You Need"]
    answer = offline_bot.ask("Which optimizer did the Transformer use?", elsewhere)
    assert answer.grounded and {c.title for c in answer.citations} == {"Attention Is All You Need"}

    forgotten = offline_bot.forget("attention is all", elsewhere)
    assert forgotten.title == "Attention Is All You Need"
    assert offline_bot.documents(elsewhere) == []
    # still there for the scope that added it first
    assert "Attention Is All You Need" in {d.title for d in offline_bot.documents(CLI_SCOPE)}


def test_forget_cannot_remove_another_channels_document(offline_bot, corpus):
    from citebot.errors import DocumentNotFound

    with pytest.raises(DocumentNotFound):
        offline_bot.forget("Attention", Scope("T-other", "C-intruder"))
    assert "Attention Is All You Need" in {d.title for d in offline_bot.documents(CLI_SCOPE)}


def test_empty_and_punctuation_questions_get_usage_help(offline_bot):
    from citebot.errors import EmptyQuestion

    for question in ["", "   ", "?!?..."]:
        with pytest.raises(EmptyQuestion, match="Ask a question"):
            offline_bot.ask(question, CLI_SCOPE)


def test_a_very_long_question_still_gets_an_answer(offline_bot, corpus):
    answer = offline_bot.ask("What optimizer did the Transformer use? " * 400, CLI_SCOPE)
    assert answer.grounded and answer.citations


def test_summary_mode_offline_answers_with_citations(offline_bot, corpus):
    answer = offline_bot.ask("What is dense passage retrieval?", CLI_SCOPE, mode="summary")
    assert answer.mode == "summary" and answer.citations


def test_last_document_forgotten_deletes_its_chunks(offline_bot, corpus):
    scope = Scope("T-solo", "C-solo")
    pdf = (PDFS / "1111.2011.pdf").read_bytes()
    fresh = offline_bot.ingest_pdf(pdf, Provenance(scope=scope))
    assert fresh.already_present  # the corpus fixture added it in the CLI scope
    offline_bot.forget(fresh.document.document_id[:10], scope)
    offline_bot.forget(fresh.document.document_id[:10], CLI_SCOPE)
    assert offline_bot.store.get_document(fresh.document.document_id) is None
    assert not [
        p
        for p in offline_bot.retrieve("Bethe lattice", CLI_SCOPE, top_k=20) + offline_bot.retrieve("Bethe lattice", scope)
        if p.chunk.document_id == fresh.document.document_id
    ]
    # put it back for the other tests
    again = offline_bot.ingest_pdf(pdf, Provenance(scope=CLI_SCOPE))
    assert not again.already_present and again.document.chunks == fresh.document.chunks
