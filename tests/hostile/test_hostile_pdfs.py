"""Hostile PDFs through ``Citebot.ingest_pdf`` (what the bot and the CLI call): each ends within
the parse budget plus a margin with its specific error, or is indexed within the caps; the
document indexed before stays answerable and no partial document is left behind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from citebot import errors
from citebot.domain import Provenance
from tests.hostile import pdfgen
from tests.hostile.conftest import BUDGET_S, MARGIN_S, SCOPE, Stopwatch, assert_known_document_answerable


def _counts(bot) -> tuple[int, int]:
    docs = bot.store.documents.aggregate.over_all(total_count=True).total_count
    chunks = bot.store.chunks.aggregate.over_all(total_count=True).total_count
    return docs, chunks


SLOW = {
    # 5,000 forms read in 1.6 s once page 1 is read once (the overview reads it for the title and its text)
    "50,000 forms each showing text": lambda: pdfgen.many_text_forms(50_000),
    "one page of 5 MB of text": lambda: pdfgen.huge_text_page(5_000_000),
    "one million tiny text operators": lambda: pdfgen.tiny_operators(1_000_000),
    "a 20 MB word without spaces": lambda: pdfgen.text_pdf([[b"x" * 20_000_000]]),
}


@pytest.mark.parametrize("name", list(SLOW))
def test_a_pdf_that_reads_forever_is_stopped_at_the_budget(hostile_bot, known_document, name):
    pdf = SLOW[name]()
    before = _counts(hostile_bot)
    with Stopwatch() as watch, pytest.raises((errors.PdfTooSlow, errors.PdfTooComplex)) as raised:
        hostile_bot.ingest_pdf(pdf, Provenance(scope=SCOPE, filename="hostile.pdf"))
    assert watch.seconds < BUDGET_S + MARGIN_S, watch.seconds
    message = str(raised.value)
    assert "took too long to read" in message or "more memory" in message
    assert "scanned or unusual PDF" in message
    assert _counts(hostile_bot) == before
    assert_known_document_answerable(hostile_bot, known_document)


def test_a_stopped_worker_is_replaced_and_the_next_pdf_is_read(hostile_bot, known_document):
    with pytest.raises(errors.PdfTooSlow):
        hostile_bot.ingest_pdf(pdfgen.tiny_operators(1_000_000), Provenance(scope=SCOPE))
    with Stopwatch() as watch:
        result = hostile_bot.ingest_pdf(pdfgen.paper("okapi"), Provenance(scope=SCOPE, filename="okapi.pdf"))
    assert result.document.title == "The okapi report" and watch.seconds < 30
    hostile_bot.forget(result.document.document_id, SCOPE)


def test_nested_forms_end_quickly(hostile_bot, known_document):
    """12^7 nested text draws in 2 KB: pypdf (7.x) stops after 5,000 form invocations, so the page is
    read at once and indexed with what was read; either way it ends within the budget."""
    with Stopwatch() as watch:
        try:
            result = hostile_bot.ingest_pdf(pdfgen.nested_forms(depth=7, fanout=12), Provenance(scope=SCOPE))
            hostile_bot.forget(result.document.document_id, SCOPE)
        except (errors.PdfTooSlow, errors.PdfTooComplex) as error:
            assert "scanned or unusual PDF" in str(error)
    assert watch.seconds < BUDGET_S + MARGIN_S, watch.seconds
    assert_known_document_answerable(hostile_bot, known_document)


def test_499_pages_sharing_one_content_stream_are_read_once(hostile_bot, known_document):
    with Stopwatch() as watch:
        result = hostile_bot.ingest_pdf(pdfgen.shared_content(499), Provenance(scope=SCOPE, filename="shared.pdf"))
    assert watch.seconds < BUDGET_S + MARGIN_S
    doc = result.document
    assert doc.pages == 499
    assert doc.chunks <= 5  # one page of text, not 499 copies of it
    hostile_bot.forget(doc.document_id, SCOPE)


def test_huge_metadata_is_capped_and_cleaned_and_the_list_still_works(hostile_bot, known_document):
    before = _counts(hostile_bot)
    added = []
    for copy in range(3):  # three 40 MB authors once broke `docs` and `forget` for the whole scope
        pdf = pdfgen.huge_metadata(2**20 + copy)
        added.append(hostile_bot.ingest_pdf(pdf, Provenance(scope=SCOPE, filename=f"meta{copy}.pdf")))
    for result in added:
        assert result.document.title == "Metadata bomb report"  # escape and bidi characters gone
        assert result.document.authors == ("A" * 300,)
    with Stopwatch() as watch:
        try:  # 40 MB: read within the budget (capped, or dropped when pypdf will not read it) or refused
            added.append(hostile_bot.ingest_pdf(pdfgen.huge_metadata(40 * 2**20), Provenance(scope=SCOPE)))
            assert added[-1].document.authors in (("A" * 300,), ())
        except (errors.PdfTooSlow, errors.PdfTooComplex) as error:
            assert "scanned or unusual PDF" in str(error)
    assert watch.seconds < BUDGET_S + MARGIN_S
    listed = {d.document_id for d in hostile_bot.documents(SCOPE)}
    assert all(r.document.document_id in listed for r in added)
    for result in added:
        hostile_bot.forget(result.document.document_id, SCOPE)
    assert _counts(hostile_bot) == before
    assert_known_document_answerable(hostile_bot, known_document)


def test_lone_surrogates_in_text_are_replaced_and_the_text_is_searchable(hostile_bot, known_document):
    result = hostile_bot.ingest_pdf(pdfgen.lone_surrogate_text(), Provenance(scope=SCOPE, filename="surrogate.pdf"))
    hits = hostile_bot.retrieve("surrogate report broken glyph", SCOPE, alpha=0.0)
    assert hits and hits[0].chunk.document_id == result.document.document_id
    assert "\ufffd" in hits[0].chunk.text
    hostile_bot.forget(result.document.document_id, SCOPE)


def test_a_question_with_undecodable_bytes_is_answered(hostile_bot, known_document):
    question = b"How much does the zebra method improve accuracy \xff\xfe?".decode("utf-8", "surrogateescape")
    answer = hostile_bot.ask(question, SCOPE)
    assert "twelve percent" in answer.text


def test_a_page_over_the_page_cap_is_cut_and_the_reply_says_so(hostile_settings, known_document):
    from dataflows.app import Citebot

    with Citebot(replace(hostile_settings, max_page_chars=20_000)) as capped:
        result = capped.ingest_pdf(pdfgen.huge_text_page(300_000), Provenance(scope=SCOPE, filename="long-page.pdf"))
        assert result.notes == [
            "1 page(s) had more than 20,000 characters of text and were cut to that (page 1); "
            "the rest of those pages is not searchable."
        ]
        assert result.document.chunks <= 20_000 // 1000
        capped.forget(result.document.document_id, SCOPE)


def test_more_chunks_than_the_cap_is_refused_before_embedding(hostile_settings, hostile_bot, known_document):
    from dataflows.app import Citebot

    before = _counts(hostile_bot)
    with Citebot(replace(hostile_settings, max_chunks=10)) as capped:
        with Stopwatch() as watch, pytest.raises(errors.TooMuchText) as raised:
            capped.ingest_pdf(pdfgen.paper("capybara", pages=40), Provenance(scope=SCOPE, filename="long.pdf"))
    assert "the limit is 10 chunks" in str(raised.value) and "Split it" in str(raised.value)
    assert "embed" not in capped.timer.timings or watch.seconds < 30
    assert _counts(hostile_bot) == before


def test_too_many_arxiv_ids_are_refused_at_once(hostile_bot):
    with Stopwatch() as watch, pytest.raises(errors.TooManyIds, match="at most 10 per request"):
        hostile_bot.ingest_arxiv([f"2301.{i:05d}" for i in range(10_000)], Provenance(scope=SCOPE, source="arxiv"))
    assert watch.seconds < 1


def test_a_pdf_needing_more_memory_than_a_worker_may_use_is_refused_and_the_worker_replaced(
    hostile_settings, known_document
):
    from dataflows.app import Citebot

    with Citebot(replace(hostile_settings, parse_memory_mb=100, parse_budget_s=60)) as capped:
        with Stopwatch() as watch, pytest.raises(errors.PdfTooComplex) as raised:
            capped.ingest_pdf(pdfgen.huge_text_page(5_000_000), Provenance(scope=SCOPE, filename="bomb.pdf"))
        assert watch.seconds < 60 + MARGIN_S
        assert str(raised.value).startswith("The PDF needs more memory to read than citebot allows (over 100 MiB)")
        result = capped.ingest_pdf(pdfgen.paper("tapir"), Provenance(scope=SCOPE, filename="tapir.pdf"))
        assert result.document.title == "The tapir report"
        capped.forget(result.document.document_id, SCOPE)
