"""One busy workload never stalls another: one channel floods the bot with slow PDFs, and people in
another channel still get their questions answered and their share indexed in its fair turn.

The slow PDFs are generated (tests/slow_pdf.py): real, small PDFs that take pypdf seconds to read.
Nothing of ours is mocked; the bot runs as in production against the stand-in Slack.
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bot.runner import BotServer
from citebot.settings import Settings
from dataflows.app import Citebot
from tests.bot.harness import USER, BotThread, Driver, new_channel, share_file
from tests.paths import PDFS
from tests.slow_pdf import slow_pdf
from tests.standins.slack_server import SlackStandIn

FLOOD = 7  # shares in the busy channel: 2 start, 4 wait (the per-channel limit), 1 is refused
PAPER, SECOND_PAPER = PDFS / "1111.2011.pdf", PDFS / "2004.04906.pdf"
UPDATE = "I'll update this message when it starts."


@pytest.fixture
def busy_bot(slack: SlackStandIn, bot_settings: Settings, citebot: Citebot) -> Iterator[Driver]:
    settings = replace(bot_settings, ingest_concurrency=2, ingest_queue_per_channel=4, ingest_queue=20)
    bot = BotThread(BotServer(settings, citebot, host="127.0.0.1", port=0)).start()
    try:
        yield Driver(slack, bot, "http")
    finally:
        bot.stop()


def _replies(slack: SlackStandIn, channel: str, ts: str) -> list[str]:
    return [m["text"] for m in slack.thread(channel, ts) if m.get("bot_id")]


def _own_copy(pdf: bytes) -> bytes:
    """The same PDF with a trailing comment: a document of its own (other tests index the original)."""
    return pdf + f"\n%busy-test {random.randrange(10**9)}\n".encode()


def _posted(slack: SlackStandIn, channel: str) -> list[str]:
    """Texts the bot posted in ``channel`` as they were first posted (before any update)."""
    return [c.args.get("text", "") for c in slack.calls("chat.postMessage") if c.args.get("channel") == channel]


def _indexed(slack: SlackStandIn, channel: str, ts: str) -> bool:
    return any("Indexed" in t or "already indexed" in t for t in _replies(slack, channel, ts))


def _ask(driver: Driver, channel: str, question: str) -> tuple[float, dict[str, Any]]:
    """Seconds from the slash command to the final answer in the thread of the "asked:" post."""
    began = time.monotonic()
    driver.command("/ask", question, channel)
    asked = driver.slack.wait_for(
        lambda: [m for m in driver.slack.channel_messages(channel) if m.get("bot_id") and question in m["text"]], timeout=60
    )
    answer = driver.final_reply(channel, asked[-1]["ts"], timeout=60)
    return time.monotonic() - began, answer


def test_questions_and_other_channels_are_not_stalled_by_a_flooded_channel(busy_bot: Driver, slack: SlackStandIn) -> None:
    driver = busy_bot
    quiet, busy = new_channel(slack), new_channel(slack)
    paper, payload = share_file(slack, quiet, _own_copy(PAPER.read_bytes()), PAPER.name)
    driver.deliver(payload)
    slack.wait_for(lambda: _indexed(slack, quiet, paper["ts"]), timeout=120)
    idle_s, _ = _ask(driver, quiet, "What is the main contribution?")

    # The flood: seven slow documents shared into one channel.
    seed = random.randrange(10**9)
    flood = []
    for i in range(FLOOD):
        message, payload = share_file(slack, busy, slow_pdf(seed=seed + i, empty_shows=120_000), f"slow-{i}.pdf")
        driver.deliver(payload)
        flood.append(message)

    def notes_posted() -> list[str] | None:
        notes = [t for t in _posted(slack, busy) if t.startswith((":inbox_tray:", ":x:"))]
        return notes if len(notes) == FLOOD - 2 else None

    notes = slack.wait_for(notes_posted, timeout=30)
    refused = [n for n in notes if "already waiting to be indexed in this channel" in n]
    queued = sorted(n.split("for indexing: ")[1].split(".")[0] for n in notes if n.startswith(":inbox_tray: Queued"))
    assert len(refused) == 1 and "slow-" in refused[0] and refused[0].startswith(":x:")
    assert queued == ["1 ahead of it", "2 ahead of it", "3 ahead of it", "it is next in line"]

    # /docs in the busy channel shows what is being indexed and what waits.
    docs_url = driver.command("/docs", "", busy)["response_url"]
    docs = slack.wait_for(lambda: driver.responses_for(docs_url), timeout=30)[-1]["text"]
    shown = re.search(r"Being indexed or queued here\* \((\d+)\)", docs)  # fewer once the first ones finish
    assert shown and 1 <= int(shown.group(1)) <= 6 and "slow-" in docs and "indexing now" in docs, docs
    assert docs.count("indexing now") == 2 and "queued, 3 ahead" in docs
    with urllib.request.urlopen(driver.bot.url + "/healthz", timeout=5) as response:
        assert json.loads(response.read())["indexing"] == {"running": 2, "waiting": 4}

    # Meanwhile, in the quiet channel: a question, a mention and a normal share.
    second, payload = share_file(slack, quiet, _own_copy(SECOND_PAPER.read_bytes()), SECOND_PAPER.name)
    driver.deliver(payload)
    mention = slack.user_message(quiet, USER, f"<@{slack.state.bot_user_id}> What problem does it solve?")
    driver.deliver(slack.app_mention_event(quiet, mention))
    loaded_s, answer = _ask(driver, quiet, "What is the main contribution? (under load)")
    busy_pending = [m for m in flood if not _indexed(slack, busy, m["ts"])]
    mention_answer = driver.final_reply(quiet, mention["ts"], timeout=30)

    assert loaded_s <= idle_s + 5, (idle_s, loaded_s)  # a few seconds of the unloaded time at most
    assert busy_pending, "the question should be answered while the flood is still being indexed"
    assert answer["blocks"] and mention_answer["blocks"]

    # The normal share waits for one slot only: it is next in line although 4 busy documents wait.
    second_note = slack.wait_for(lambda: [t for t in _posted(slack, quiet) if SECOND_PAPER.name in t], timeout=30)
    assert second_note == [f":inbox_tray: Queued `{SECOND_PAPER.name}` for indexing: it is next in line. {UPDATE}"]
    slack.wait_for(lambda: _indexed(slack, quiet, second["ts"]), timeout=120)
    assert [m for m in flood if not _indexed(slack, busy, m["ts"])], "indexed before the busy channel's queue drained"

    # Every accepted document of the flood is indexed in the end: each queue note said when it started,
    # then became the result, so every thread holds exactly one reply.
    slack.wait_for(lambda: sum(_indexed(slack, busy, m["ts"]) for m in flood) == FLOOD - 1, timeout=180)
    updates = [c.args for c in slack.calls("chat.update") if c.args.get("channel") == busy]
    started = [u["text"] for u in updates if u["text"].startswith(":hourglass_flowing_sand: Indexing `slow-")]
    assert len(started) == 4 and all("waited" in t for t in started)
    assert [len(_replies(slack, busy, m["ts"])) for m in flood] == [1] * FLOOD
