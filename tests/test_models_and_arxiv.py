"""The OpenAI-compatible path (stand-in server over real HTTP) and arXiv (stand-in Atom API)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from citebot import errors
from citebot.domain import Provenance, Scope
from dataflows.app import Citebot
from tests.paths import NASTY, PDFS
from tests.standins.settings import with_standins

SCOPE = Scope("T-models", "C-models")


@pytest.fixture(scope="module")
def online_bot(base_settings, openai_standin, arxiv_standin):
    settings = with_standins(base_settings, arxiv=arxiv_standin, openai=openai_standin, collection_prefix="Online")
    with Citebot(settings) as bot:
        for name in ("1706.03762", "1810.04805", "2004.04906"):
            bot.ingest_pdf((PDFS / f"{name}.pdf").read_bytes(), Provenance(scope=SCOPE, filename=f"{name}.pdf"))
        yield bot


def test_answer_mode_makes_exactly_one_llm_call_and_cites(online_bot, openai_standin):
    openai_standin.reset()
    answer = online_bot.ask("What optimizer was used to train the Transformer?", SCOPE)
    assert openai_standin.chat_calls == 1
    assert answer.grounded and answer.citations
    assert "Attention Is All You Need" in {c.title for c in answer.citations}


def test_streamed_answers_report_partial_text(online_bot, openai_standin):
    partials: list[str] = []
    pace, online_bot.chat_model.partial_every_s = online_bot.chat_model.partial_every_s, 0.0  # every token
    try:
        answer = online_bot.ask("What optimizer was used to train the Transformer?", SCOPE, on_partial=partials.append)
    finally:
        online_bot.chat_model.partial_every_s = pace
    assert answer.citations and len(partials) > 3
    assert all(len(a) <= len(b) for a, b in zip(partials, partials[1:]))  # the text only grows


def test_summary_mode_caches_chunk_summaries_in_weaviate(online_bot, openai_standin):
    question = "How are passages encoded in dense passage retrieval?"
    openai_standin.reset()
    cold = online_bot.ask(question, SCOPE, mode="summary")
    cold_calls = openai_standin.chat_calls
    assert cold.citations and cold_calls >= 2  # per-chunk summaries + the answer
    openai_standin.reset()
    warm = online_bot.ask(question, SCOPE, mode="summary")
    assert openai_standin.chat_calls == 1  # summaries came from Weaviate
    assert warm.text == cold.text


def test_invalid_citation_numbers_are_removed_and_uncited_answers_flagged(online_bot, openai_standin):
    openai_standin.next_replies.append("Adam was used [1][42].")
    answer = online_bot.ask("What optimizer was used to train the Transformer?", SCOPE)
    assert "[42]" not in answer.text and "[1]" in answer.text
    openai_standin.next_replies.append("It was probably Adam.")
    answer = online_bot.ask("What optimizer was used to train the Transformer?", SCOPE)
    assert "cites no source" in answer.text and not answer.citations


def test_a_model_that_finds_nothing_says_so(online_bot, openai_standin):
    openai_standin.next_replies.append("NOT_IN_SOURCES")
    answer = online_bot.ask("What optimizer was used to train the Transformer?", SCOPE)
    assert not answer.grounded and "couldn't find" in answer.text


def test_rate_limits_and_server_errors_are_retried(online_bot, openai_standin):
    from tests.standins.background import Fault

    openai_standin.reset()
    openai_standin.faults.extend([Fault(status=429, retry_after=0.05, path="chat"), Fault(status=500, path="chat")])
    answer = online_bot.ask("What optimizer was used to train the Transformer?", SCOPE)
    assert answer.citations
    assert [r.status for r in openai_standin.requests if "chat" in r.path] == [429, 500, 200]


def test_a_dead_model_endpoint_gives_a_clear_error_and_the_bot_keeps_serving(online_bot, openai_standin):
    from tests.standins.background import Fault

    openai_standin.faults.extend([Fault(status=500, path="chat")] * 10)
    with pytest.raises(errors.ModelUnavailable, match="try again"):
        online_bot.ask("What optimizer was used to train the Transformer?", SCOPE)
    openai_standin.faults.clear()
    assert online_bot.ask("What optimizer was used to train the Transformer?", SCOPE).citations


def test_embedding_failure_mid_ingest_leaves_no_partial_document(online_bot, openai_standin):
    from tests.standins.background import Fault

    pdf = (NASTY / "large_352pages_freeculture.pdf").read_bytes()  # hundreds of chunks: batch 2 fails
    before = online_bot.store.chunks.aggregate.over_all(total_count=True).total_count
    documents_before = online_bot.documents(SCOPE)  # whatever other tests have added to the module's scope
    openai_standin.reset()
    # the first embedding request passes, every later one fails past the client's retries
    openai_standin.faults.extend([Fault(path="embeddings")] + [Fault(status=503, path="embeddings")] * 20)
    with pytest.raises(errors.ModelUnavailable):
        online_bot.ingest_pdf(pdf, Provenance(scope=SCOPE, filename="freeculture.pdf"))
    openai_standin.faults.clear()
    assert online_bot.store.chunks.aggregate.over_all(total_count=True).total_count == before
    assert len(openai_standin.embedding_requests) >= 2  # it failed after storing the first batch
    assert online_bot.documents(SCOPE) == documents_before
    assert online_bot.store.get_document(hashlib.sha256(pdf).hexdigest()) is None


def test_reingesting_known_bytes_embeds_nothing_and_a_second_channel_reuses_vectors(online_bot, openai_standin):
    openai_standin.reset()
    result = online_bot.ingest_pdf(
        (PDFS / "1706.03762.pdf").read_bytes(), Provenance(scope=Scope("T-models", "C-second"), source="slack")
    )
    assert result.already_present and openai_standin.embedding_calls == 0
    assert [d.title for d in online_bot.documents(Scope("T-models", "C-second"))] == ["Attention Is All You Need"]


def test_switching_embedding_model_is_refused_with_a_clear_message(base_settings, online_bot):
    with pytest.raises(errors.EmbeddingModelMismatch, match="CITEBOT_COLLECTION_PREFIX"):
        Citebot(replace(base_settings, collection_prefix="Online"))  # local MiniLM on an OpenAI-built index


# ---- arXiv ------------------------------------------------------------------------------


def test_arxiv_paper_is_fetched_and_indexed_with_metadata(online_bot, arxiv_standin):
    [outcome] = online_bot.ingest_arxiv(["arXiv:1111.2011"], Provenance(scope=SCOPE, user="U1", source="arxiv"))
    assert outcome.error is None, outcome.error
    r = outcome.result
    assert r.document.title.startswith("Quantum Criticality for Extended Nodes on a Bethe Lattice")
    assert r.document.pages == 8 and r.document.chunks > 5 and r.document.arxiv_id == "1111.2011"
    assert len(r.document.authors) == 3 and r.document.link.endswith("/abs/1111.2011")
    again = online_bot.ingest_arxiv(["https://arxiv.org/abs/1111.2011"], Provenance(scope=Scope("T-models", "C-3")))
    assert again[0].result.already_present


def test_each_bad_arxiv_id_gets_its_own_error_and_good_ones_still_work(online_bot, arxiv_standin):
    outcomes = online_bot.ingest_arxiv(
        ["1706.03762", "abc", "0000.0000", "hep-th/9901001x"], Provenance(scope=SCOPE, source="arxiv")
    )
    good, bad_format, unknown, malformed = outcomes
    assert good.result and good.result.document.title == "Attention Is All You Need"
    assert "not an arXiv ID" in bad_format.error
    assert "no paper" in unknown.error
    assert "not an arXiv ID" in malformed.error


def test_arxiv_outage_is_reported_per_id(online_bot, arxiv_standin):
    from tests.standins.background import Fault

    arxiv_standin.faults.extend([Fault(status=503, path="/api/query")] * 5)
    [outcome] = online_bot.ingest_arxiv(["1605.08386"], Provenance(scope=SCOPE, source="arxiv"))
    arxiv_standin.faults.clear()
    assert "try again later" in outcome.error


def test_arxiv_pdf_missing_is_reported(online_bot, arxiv_standin):
    [outcome] = online_bot.ingest_arxiv(["1605.08386"], Provenance(scope=SCOPE, source="arxiv"))
    assert "not found" in outcome.error  # the stand-in has its metadata but no PDF
