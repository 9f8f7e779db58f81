"""Issue 13.3: the AI app panel. A greeting and suggested prompts from the viewed channel's
documents; questions answered (streamed) from that channel only when the bot is a member there,
else from the DM's own documents; a status and a title while working; PDFs dropped into the panel
indexed for the DM. Both modes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot import messages
from citebot.domain import Scope
from dataflows.app import Citebot
from tests.bot.harness import ATTENTION, USER, Driver, new_channel, one_page_pdf, share_file, thread_texts
from tests.standins.slack_server import SlackStandIn


@pytest.fixture(scope="module")
def paper_channel(slack: SlackStandIn, http_bot: Any) -> str:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "1706.03762.pdf")
    Driver(slack, http_bot, "http").deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t], timeout=180)
    return channel


def _open_panel(driver: Driver, viewing: str | None) -> tuple[str, str]:
    dm = new_channel(driver.slack, "D")
    payload = driver.slack.assistant_thread_started_event(dm, USER, viewing)
    driver.deliver(payload)
    return dm, payload["event"]["assistant_thread"]["thread_ts"]


def _ask_in_panel(driver: Driver, dm: str, thread_ts: str, text: str) -> dict[str, Any]:
    question = driver.slack.user_message(dm, USER, text, thread_ts=thread_ts)
    driver.deliver(driver.slack.message_event(dm, question))
    return driver.slack.wait_for(
        lambda: [
            m for m in driver.slack.thread(dm, thread_ts) if messages.is_answer_message(m) and m["ts"] > question["ts"]
        ],
        timeout=120,
    )[-1]


def test_the_panel_greets_and_suggests_prompts_from_the_viewed_channel(
    driver: Driver, slack: SlackStandIn, paper_channel: str
) -> None:
    dm, ts = _open_panel(driver, paper_channel)
    greeting = slack.wait_for(lambda: thread_texts(slack, dm, ts))[0]
    assert greeting == f"Hi! Ask me about the 1 document in #{slack.state.channels[paper_channel].name}; answers cite pages."
    panel = slack.wait_for(
        lambda: slack.state.assistant_threads[(dm, ts)].get("prompts") and slack.state.assistant_threads[(dm, ts)]
    )
    titles = [p["title"] for p in panel["prompts"]]
    assert 1 <= len(titles) <= 4 and titles[0] == "Summarise Attention Is All You Need"
    assert panel["prompts"][0]["message"] == "Summarise “Attention Is All You Need”."


def test_a_question_in_the_panel_is_answered_from_the_viewed_channel(
    driver: Driver, slack: SlackStandIn, paper_channel: str
) -> None:
    dm, ts = _open_panel(driver, paper_channel)
    slack.wait_for(lambda: thread_texts(slack, dm, ts))
    answer = _ask_in_panel(driver, dm, ts, "What optimizer was used to train the Transformer?")
    assert "[1]" in answer["text"] and "Attention Is All You Need" in json.dumps(answer["blocks"], ensure_ascii=False)
    panel = slack.state.assistant_threads[(dm, ts)]
    assert panel["title"] == "What optimizer was used to train the Transformer?"
    assert panel["statuses"] == [messages.PANEL_STATUS]


def test_a_channel_without_the_bot_is_never_searched_from_the_panel(
    driver: Driver, slack: SlackStandIn, paper_channel: str
) -> None:
    """The bot was removed from the channel: the panel answers from the DM's own documents only."""
    slack.state.channels[paper_channel].member = False
    try:
        dm, ts = _open_panel(driver, paper_channel)
        greeting = slack.wait_for(lambda: thread_texts(slack, dm, ts))[0]
        answer = _ask_in_panel(driver, dm, ts, "What optimizer was used to train the Transformer?")
    finally:
        slack.state.channels[paper_channel].member = True
    assert "#" not in greeting and "prompts" not in slack.state.assistant_threads[(dm, ts)]
    shown = json.dumps(slack.bot_messages(dm), ensure_ascii=False)
    assert "couldn't find that in the documents added here" in answer["text"]
    for leak in ("Attention Is All You Need", "Adam", "Vaswani"):
        assert leak not in shown


def test_a_pdf_dropped_into_the_panel_is_indexed_for_the_dm(driver: Driver, slack: SlackStandIn, citebot: Citebot) -> None:
    dm, ts = _open_panel(driver, None)
    slack.wait_for(lambda: thread_texts(slack, dm, ts))
    pdf = one_page_pdf(f"The Quokka protocol (run {dm}) retries every 7 seconds.")  # new content in each mode
    file = slack.add_file(pdf, "quokka.pdf", user=USER)
    message = slack.user_message(dm, USER, "", thread_ts=ts, files=[file])
    driver.deliver(slack.message_event(dm, message))
    indexed = slack.wait_for(lambda: [t for t in thread_texts(slack, dm, ts) if "Indexed" in t or ":x:" in t], timeout=120)
    assert (
        "Indexed *<" in indexed[0]
        and "quokka.pdf" in indexed[0]
        and len(citebot.documents(Scope(slack.state.team_id, dm))) == 1
    )
    answer = _ask_in_panel(driver, dm, ts, "How often does the Quokka protocol retry?")
    assert "7 seconds" in answer["text"]


def test_moving_to_another_channel_with_the_panel_open_follows_it(
    driver: Driver, slack: SlackStandIn, paper_channel: str
) -> None:
    empty = new_channel(slack)
    dm, ts = _open_panel(driver, empty)
    assert "has no documents yet" in slack.wait_for(lambda: thread_texts(slack, dm, ts))[0]
    driver.deliver(slack.assistant_thread_context_changed_event(dm, ts, paper_channel))
    answer = _ask_in_panel(driver, dm, ts, "What optimizer was used to train the Transformer?")
    assert "Attention Is All You Need" in json.dumps(answer["blocks"], ensure_ascii=False)
