"""Hostile PDFs shared in Slack at the same time as a normal one (the bot against the stand-in
Slack, a real Weaviate): the normal PDF is indexed without waiting for the hostile parses, each
hostile share gets its own clear reply within the budget, and an earlier document still answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bot.runner import BotServer
from citebot.settings import Settings
from dataflows.app import Citebot
from tests.bot.harness import BotThread, Driver, new_channel, share_file, thread_texts
from tests.hostile import pdfgen
from tests.hostile.conftest import MARGIN_S
from tests.standins.slack_server import SlackStandIn

# Long enough that "the normal PDF did not wait for a hostile parse to be stopped" is visible.
BOT_BUDGET_S = 12.0


@pytest.fixture(scope="module")
def hostile_http(bot_settings: Settings, slack: SlackStandIn) -> Iterator[Driver]:
    # Three documents indexed at once, so the normal PDF has a slot of its own beside the two
    # hostile ones: what is checked is that their parses do not hold it up (queueing behind
    # busy slots is tests/bot/test_bot_busy.py's subject).
    settings = replace(
        bot_settings,
        collection_prefix="HostileBot",
        parse_budget_s=BOT_BUDGET_S,
        parse_workers=3,
        ingest_concurrency=3,
    )
    citebot = Citebot(settings)
    bot = BotThread(BotServer(settings, citebot, host="127.0.0.1", port=0)).start()
    try:
        yield Driver(slack, bot, "http")
    finally:
        bot.stop()
        citebot.close()


def _reply(slack: SlackStandIn, channel: str, ts: str, timeout: float) -> str:
    """The share's result: the thread's reply once it is no longer a queue note ("Queued …",
    "Indexing … now"), which the bot edits into the result."""

    def result() -> list[str]:
        return [t for t in thread_texts(slack, channel, ts) if t.startswith((":white_check_mark:", ":x:"))]

    return slack.wait_for(result, timeout=timeout)[0]


def test_hostile_shares_do_not_hold_up_a_normal_pdf(hostile_http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    known, payload = share_file(slack, channel, pdfgen.paper("zebra"), "zebra.pdf")
    hostile_http.deliver(payload)
    assert "|The zebra report>*: 2 pages" in _reply(slack, channel, known["ts"], timeout=120)

    shares = {}
    started = time.perf_counter()
    for name, pdf in (
        ("forms.pdf", pdfgen.huge_text_page(5_000_000)),
        ("operators.pdf", pdfgen.tiny_operators(1_000_000)),
        ("okapi.pdf", pdfgen.paper("okapi")),
    ):
        message, payload = share_file(slack, channel, pdf, name)
        hostile_http.deliver(payload)
        shares[name] = message["ts"]

    normal = _reply(slack, channel, shares["okapi.pdf"], timeout=BOT_BUDGET_S + MARGIN_S)
    normal_seconds = time.perf_counter() - started
    assert "|The okapi report>*: 2 pages" in normal
    # Both hostile parses are still running (or were just stopped): the normal PDF did not queue behind them.
    assert normal_seconds < BOT_BUDGET_S, normal_seconds

    for name in ("forms.pdf", "operators.pdf"):
        reply = _reply(slack, channel, shares[name], timeout=BOT_BUDGET_S + MARGIN_S)
        assert reply.startswith(":x:") and "PDF" in reply, reply  # a clear refusal: too slow, or no usable text
        slack.wait_for(lambda ts=shares[name]: "x" in slack.reactions_on(channel, ts))
    assert time.perf_counter() - started < BOT_BUDGET_S + MARGIN_S

    # The document shared before is still answerable, through /ask.
    hostile_http.command("/ask", "How much does the zebra method improve accuracy?", channel)
    asked = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if m.get("bot_id") and "asked" in m["text"]])
    answer = hostile_http.final_reply(channel, asked[-1]["ts"])
    assert "twelve percent" in answer["text"] and "zebra" in answer["text"].lower()


def test_arxiv_command_with_too_many_ids_is_refused_with_the_limit(hostile_http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    ids = " ".join(f"2301.{i:05d}" for i in range(11))
    payload = hostile_http.command("/arxiv", ids, channel)
    responses = slack.wait_for(lambda: hostile_http.responses_for(payload["response_url"]), timeout=10)
    assert "That is 11 arXiv IDs; I add at most 10 per request." in responses[0]["text"]
    assert not slack.channel_messages(channel)  # refused before anything was posted or fetched
