"""Questions: /ask, mentions, follow-ups in threads, DMs; isolation between channels; feedback."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot import messages
from dataflows.app import Citebot
from tests.bot.harness import ATTENTION, USER, Driver, forget_confirmed, new_channel, share_file, thread_texts, wait_quiet
from tests.standins.background import Fault
from tests.standins.slack_server import SlackStandIn

QUESTION = "What optimizer was used to train the Transformer?"


@pytest.fixture(scope="module")
def channel_a(slack: SlackStandIn, http_bot: Any) -> str:
    """A channel where the Transformer paper has been shared and indexed."""
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "1706.03762.pdf")
    Driver(slack, http_bot, "http").deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t], timeout=180)
    return channel


def _everything_shown(slack: SlackStandIn, channel: str) -> str:
    """All text and blocks the bot posted in a channel (threads included), as one string."""
    return json.dumps(slack.bot_messages(channel), ensure_ascii=False)


def _ask(driver: Driver, channel: str, text: str = QUESTION) -> tuple[dict[str, Any], dict[str, str]]:
    earlier = {m["ts"] for m in driver.slack.channel_messages(channel)}  # other tests ask in this channel too
    payload = driver.command("/ask", text, channel)
    asked = driver.slack.wait_for(
        lambda: [
            m
            for m in driver.slack.channel_messages(channel)
            if m.get("bot_id") and m["ts"] not in earlier and text.split()[-1] in m["text"]
        ]
    )
    return driver.final_reply(channel, asked[-1]["ts"]), payload


def test_ask_answers_in_thread_with_page_citations(driver: Driver, slack: SlackStandIn, channel_a: str) -> None:
    answer, _ = _ask(driver, channel_a)
    question_post = [m for m in slack.channel_messages(channel_a) if m.get("bot_id")][-1]
    assert question_post["text"] == f"<@{USER}> asked: {QUESTION}"
    blocks = answer["blocks"]
    shown = json.dumps(blocks, ensure_ascii=False)
    assert "*Sources*" in shown and "Attention Is All You Need" in shown and re.search(r"— pp?\. \d", shown)
    assert messages.is_answer_message(answer)
    assert blocks[-1]["type"] == "context_actions"  # 👍/👎 (feedback_buttons)
    assert "[1]" in answer["text"]


def test_same_question_in_another_channel_sees_nothing_from_it(http: Driver, slack: SlackStandIn, channel_a: str) -> None:
    channel_b = new_channel(slack)
    answer, _ = _ask(http, channel_b)
    assert "couldn't find that in the documents added here" in answer["text"]
    shown = _everything_shown(slack, channel_b)
    for leak in ("Attention", "Adam", "Sources", "Vaswani", "1706.03762"):
        assert leak not in shown


def test_mention_is_answered_once_then_follow_ups_need_no_mention(http: Driver, slack: SlackStandIn, channel_a: str) -> None:
    text = f"<@{slack.state.bot_user_id}> {QUESTION}"
    message = slack.user_message(channel_a, USER, text)
    http.deliver(slack.app_mention_event(channel_a, message))
    http.deliver(slack.message_event(channel_a, message))
    http.deliver(slack.app_mention_event(channel_a, message), retry=1)
    first = http.final_reply(channel_a, message["ts"])
    assert "Attention Is All You Need" in json.dumps(first["blocks"], ensure_ascii=False)
    follow_up = slack.user_message(
        channel_a, USER, "What learning rate schedule did they use with it?", thread_ts=message["ts"]
    )
    http.deliver(slack.message_event(channel_a, follow_up))
    slack.wait_for(lambda: len([m for m in slack.thread(channel_a, message["ts"]) if m.get("bot_id")]) == 2)
    second = http.final_reply(channel_a, message["ts"])
    assert second["ts"] != first["ts"] and "Sources" in json.dumps(second["blocks"], ensure_ascii=False)
    assert messages.GENERIC_ERROR not in second["text"]
    wait_quiet(slack)
    bot_replies = [m for m in slack.thread(channel_a, message["ts"]) if m.get("bot_id")]
    assert len(bot_replies) == 2
    replies_calls = [c for c in slack.calls("conversations.replies") if c.args.get("ts") == message["ts"]]
    assert replies_calls, "the thread's history was read"


def test_threads_the_bot_never_answered_are_left_alone(http: Driver, slack: SlackStandIn, channel_a: str) -> None:
    root = slack.user_message(channel_a, USER, "lunch?")
    http.deliver(slack.message_event(channel_a, root))
    reply = slack.user_message(channel_a, "U0OTHER", "sure, at noon", thread_ts=root["ts"])
    http.deliver(slack.message_event(channel_a, reply))
    wait_quiet(slack, 1.0)
    assert slack.thread(channel_a, root["ts"]) == [dict(reply)]


def test_dm_questions_use_the_dm_as_scope(http: Driver, slack: SlackStandIn, channel_a: str) -> None:
    dm = new_channel(slack, "D")
    message = slack.user_message(dm, USER, QUESTION)
    http.deliver(slack.message_event(dm, message))
    answer = http.final_reply(dm, message["ts"])
    assert "couldn't find" in answer["text"] and "Attention" not in json.dumps(answer, ensure_ascii=False)


def test_bot_not_in_channel_tells_the_user_how_to_invite_it(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack, member=False)
    payload = driver.command("/ask", QUESTION, channel)
    response = slack.wait_for(lambda: driver.responses_for(payload["response_url"]))[0]
    assert "/invite @citebot" in response["text"] and response["response_type"] == "ephemeral"
    assert slack.channel_messages(channel) == []


def test_rate_limited_post_is_retried_after_retry_after(http: Driver, slack: SlackStandIn, channel_a: str) -> None:
    slack.faults.append(Fault(status=429, retry_after=1, path="chat.postMessage"))
    answer, _ = _ask(http, channel_a, "Which optimizer and betas were used?")
    assert "Sources" in json.dumps(answer["blocks"], ensure_ascii=False)
    limited = [r for r in slack.requests if r.fault is not None and r.status == 429]
    assert limited and limited[-1].path.endswith("chat.postMessage")


def test_replayed_command_answers_once(socket: Driver, slack: SlackStandIn, channel_a: str) -> None:
    payload = slack.slash_command("/ask", "How many attention heads were used?", channel=channel_a, user=USER)
    for _ in range(3):  # Socket Mode redelivers envelopes after reconnects
        slack.wait_ack(slack.send_envelope("slash_commands", payload))
    posts = slack.wait_for(lambda: [m for m in slack.channel_messages(channel_a) if "attention heads" in m["text"]])
    socket.final_reply(channel_a, posts[0]["ts"])
    wait_quiet(slack)
    assert len([m for m in slack.channel_messages(channel_a) if "attention heads" in m["text"]]) == 1


def test_feedback_buttons_record_a_vote(driver: Driver, slack: SlackStandIn, citebot: Citebot, channel_a: str) -> None:
    answer, _ = _ask(driver, channel_a, "What is the dimensionality of the model?")
    buttons = answer["blocks"][-1]["elements"][0]
    action = {"type": "feedback_buttons", "action_id": buttons["action_id"], "value": buttons["negative_button"]["value"]}
    click = slack.block_action(
        channel=channel_a, message_ts=answer["ts"], user=USER, action=dict(action, block_id=messages.FEEDBACK_BLOCK)
    )
    driver.click(click)
    response = slack.wait_for(lambda: driver.responses_for(click["response_url"]))[0]
    assert response["response_type"] == "ephemeral" and "Thanks" in response["text"]
    key = f"{channel_a}:{answer['ts']}"
    rows = slack.wait_for(lambda: [r for r in citebot.feedback_report() if r["answer_key"] == key])
    assert rows[0]["helpful"] is False and rows[0]["user"] == USER


def test_docs_lists_and_forget_removes(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "attention.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]), timeout=180)
    listing = driver.command("/docs", "", channel)
    shown = slack.wait_for(lambda: driver.responses_for(listing["response_url"]))[0]
    assert "Attention Is All You Need" in json.dumps(shown["blocks"], ensure_ascii=False) and "15 pages" in json.dumps(
        shown["blocks"], ensure_ascii=False
    )
    missing = driver.command("/forget", "no such paper", channel)
    error = slack.wait_for(lambda: driver.responses_for(missing["response_url"]))[0]
    assert error["text"].startswith(":x:") and error["response_type"] == "ephemeral"
    removed = forget_confirmed(driver, slack, "attention is all", channel)
    assert "Removed" in removed["text"] and removed["response_type"] == "in_channel"
    again = driver.command("/docs", "", channel)
    assert "No documents" in slack.wait_for(lambda: driver.responses_for(again["response_url"]))[0]["text"]
