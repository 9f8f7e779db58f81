"""A model endpoint that stops answering (timeouts, not errors), and questions nobody plans for.

The model endpoint is the stand-in OpenAI server over real HTTP; ``Fault(delay=...)`` makes it
slower than ``model_timeout_s``. (Error statuses, 429s and mid-ingest embedding failures are in
tests/test_models_and_arxiv.py; bad PDFs in tests/test_bad_input.py.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from citebot import errors
from citebot.domain import Answer, Provenance, Scope
from dataflows.app import Citebot
from tests.paths import PDFS
from tests.standins.background import Fault
from tests.standins.settings import with_standins

from .helpers import run_in_thread, wait_until

SCOPE = Scope("T-reliab", "C-models")
TIMEOUT_S = 1.5
RETRIES = 2
QUESTION = "What optimizer was used to train the Transformer?"


@pytest.fixture(scope="module")
def model_bot(base_settings, openai_standin) -> Iterator[Citebot]:
    # (with_standins sets its own timeout and retries: override them afterwards)
    settings = replace(
        with_standins(base_settings, openai=openai_standin, collection_prefix="Reliab"),
        model_timeout_s=TIMEOUT_S,
        model_max_retries=RETRIES,
    )
    with Citebot(settings) as bot:
        for name in ("1706.03762",):
            bot.ingest_pdf((PDFS / f"{name}.pdf").read_bytes(), Provenance(scope=SCOPE, filename=f"{name}.pdf"))
        yield bot


@pytest.fixture(scope="module")
def extractive_bot(offline_bot) -> Iterator[Citebot]:
    """The offline (local MiniLM, extractive answers) bot with one paper in this module's scope."""
    result = offline_bot.ingest_pdf((PDFS / "1706.03762.pdf").read_bytes(), Provenance(scope=SCOPE))
    yield offline_bot
    offline_bot.forget(result.document.document_id, SCOPE)


@pytest.mark.parametrize("path, streamed", [("chat/completions", False), ("chat/completions", True), ("embeddings", False)])
def test_a_hanging_model_endpoint_gives_up_after_bounded_retries_while_other_asks_succeed(
    model_bot: Citebot, openai_standin, figures, path: str, streamed: bool
) -> None:
    openai_standin.reset()
    attempts = RETRIES + 1
    openai_standin.faults.extend([Fault(delay=TIMEOUT_S * 3, path=path)] * attempts)
    partial = (lambda text: None) if streamed else None
    thread, out = run_in_thread(lambda: model_bot.ask(QUESTION, SCOPE, on_partial=partial), name="hanging-ask")

    def hung_requests() -> int:
        return sum(1 for r in openai_standin.requests if path in r.path and r.fault is not None)

    # every fault is taken by the hanging ask (the last attempt is still waiting for its timeout)...
    wait_until(lambda: hung_requests() >= attempts or not thread.is_alive(), timeout=60)
    assert thread.is_alive(), out
    # ...meanwhile another ask, from another thread, is answered normally
    began = time.perf_counter()
    other = model_bot.ask("How many attention heads does multi-head attention use?", SCOPE)
    other_s = time.perf_counter() - began
    assert other.citations, other.text
    overlapped = thread.is_alive()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the hanging ask never gave up"
    error = out.get("error")
    assert isinstance(error, errors.ModelUnavailable), repr(error)
    assert "try again" in str(error) and "Timeout" in str(error), str(error)
    # bounded: 1 try + model_max_retries retries, then stop (a 4th try would have been answered)
    assert hung_requests() == attempts and len(openai_standin.faults) == 0
    # attempts × timeout, plus the client's backoff between them (≤ 0.5 s, 1 s)
    bound = attempts * TIMEOUT_S + 1.5 + 3.0
    assert out["seconds"] < bound, (out["seconds"], bound)
    assert overlapped, "the other ask only finished after the hanging one gave up"
    figures.record(
        f"model_timeout_{path.split('/')[0]}{'_streamed' if streamed else ''}",
        model_timeout_s=TIMEOUT_S,
        max_retries=RETRIES,
        attempts=hung_requests(),
        seconds_to_error=round(out["seconds"], 2),
        bound_seconds=bound,
        error=str(error),
        concurrent_ask_seconds=round(other_s, 3),
        concurrent_ask_answered=True,
    )


QUESTIONS = {
    "10000 chars": (QUESTION + " ") * (10_000 // (len(QUESTION) + 1)) + "?" * (10_000 % (len(QUESTION) + 1)),
    "10000 chars, one word": "Adam" * 2500,
    "punctuation only": "?!.,;:-–—…¿¡()[]{}\"'`~@#$%^&*_+=|\\/<>" * 3,
    "whitespace and invisibles": " \t\n\u200b\u200d\u2060\ufeff  \n",
    "emoji only": "🤔🤔❓",
    "German": "Welcher Optimierer wurde zum Trainieren des Transformers verwendet?",
    "Chinese": "Transformer 模型使用了什么优化器进行训练？",
    "Arabic (RTL)": "ما هو المحسن الذي استخدم لتدريب المحول؟",
    "Slack mention syntax": "<@U123> <!channel> <!here> <#C123|general> What optimizer was used to train the Transformer?",
    "control characters": "What\x00 optimizer\x07 was\x1b[31m used?\x7f",
    "filter / query injection": 'Transformer") { Get { CitebotChunk(where: {path: ["document_id"], operator: Like, valueText: "*"}) { text } } }',  # noqa: E501
    "markdown / links": "*bold* _it_ ~s~ `code` ```block``` <https://evil.example|click> [x](javascript:alert(1))",
    "lone surrogate-ish and combining": "Tra\u0301nsfo\u0308rmer o\u0338ptimizer?",
}


# The offline (extractive) path is slow on 2 cores (it embeds every candidate sentence with MiniLM):
# it gets the questions that reach it differently from the LLM path.
EXTRACTIVE = ("10000 chars", "Chinese", "Slack mention syntax")


@pytest.mark.parametrize(
    "mode, label", [("llm", label) for label in QUESTIONS] + [("extractive", label) for label in EXTRACTIVE]
)
def test_odd_questions_end_in_an_answer_or_a_clear_error(request, figures, mode: str, label: str) -> None:
    bot: Citebot = request.getfixturevalue("model_bot" if mode == "llm" else "extractive_bot")
    began = time.perf_counter()
    try:
        outcome: Answer | errors.CitebotError = bot.ask(QUESTIONS[label], SCOPE)
    except errors.CitebotError as error:  # anything else fails the test
        outcome = error
    seconds = time.perf_counter() - began
    if isinstance(outcome, Answer):
        assert outcome.text.strip() and len(outcome.question) <= 2000
        assert all(c.document_id for c in outcome.citations)
        kind = "answer (cited)" if outcome.citations else "answer (says not found)"
    else:
        assert len(str(outcome)) > 10 and "\n" not in str(outcome), str(outcome)
        kind = f"error: {outcome}"
    assert seconds < 15, seconds
    figures.record("odd_questions", **{f"{mode}: {label}": kind})
    figures.add("odd_questions_totals", "questions_tried", 1)
    figures.add("odd_questions_totals", "unexpected_exceptions", 0)
