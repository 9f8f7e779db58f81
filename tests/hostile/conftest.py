"""Fixtures for the hostile-input suite: a Citebot (and a bot) with a small parse budget, and a
document indexed before any hostile input arrives (it must stay answerable)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from citebot.domain import Provenance, Scope
from citebot.settings import Settings
from tests.bot.harness import *  # noqa: F401,F403  (the stand-in Slack and bot fixtures)
from tests.hostile import pdfgen

# Small so the suite is quick on 2 cores; the mechanism is the same at the 60 s default.
BUDGET_S = 3.0
# Killing and replacing a worker, Hamilton, Weaviate: what a hostile input may take beyond the budget.
MARGIN_S = 12.0
SCOPE = Scope("T-hostile", "C-hostile")


@pytest.fixture(scope="session")
def hostile_settings(base_settings: Settings) -> Settings:
    return replace(base_settings, collection_prefix="Hostile", parse_budget_s=BUDGET_S, parse_workers=3)


@pytest.fixture(scope="session")
def hostile_bot(hostile_settings: Settings) -> Iterator:
    from dataflows.app import Citebot

    with Citebot(hostile_settings) as bot:
        yield bot


@pytest.fixture(scope="session")
def known_document(hostile_bot):
    """Indexed before the hostile inputs: every test checks it is still there and answerable."""
    return hostile_bot.ingest_pdf(pdfgen.paper("zebra"), Provenance(scope=SCOPE, user="U-known", filename="zebra.pdf"))


def assert_known_document_answerable(bot, known) -> None:
    assert any(d.document_id == known.document.document_id for d in bot.documents(SCOPE))
    answer = bot.ask("How much does the zebra method improve accuracy?", SCOPE)
    assert any(c.document_id == known.document.document_id for c in answer.citations), answer.text
    assert "twelve percent" in answer.text


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
