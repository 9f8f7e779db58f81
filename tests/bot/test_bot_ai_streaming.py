"""Issue 13.1-2: answers stream natively (chat.startStream/appendStream/stopStream) with a task
timeline, end with Sources and Slack's feedback buttons, and fall back to chat.update where Slack
refuses to stream; a vote on the feedback buttons is stored and acknowledged. Both modes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages, streaming
from dataflows.app import Citebot
from tests.bot.harness import ATTENTION, USER, Driver, new_channel, share_file, thread_texts
from tests.standins.slack_server import SlackStandIn, blocks_error

QUESTION = "What optimizer was used to train the Transformer?"


@pytest.fixture(scope="module")
def paper_channel(slack: SlackStandIn, http_bot: Any) -> str:
    channel = new_channel(slack)
    slack.state.channels[channel].name = "papers-" + channel[-4:].lower()
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "1706.03762.pdf")
    Driver(slack, http_bot, "http").deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t], timeout=180)
    return channel


@pytest.fixture
def streams(slack: SlackStandIn) -> Iterator[None]:
    """Room for a few streams in chat.startStream's Tier 2 whatever ran before; nothing remembered."""
    slack.limit("chat.startStream", 1000)
    streaming._refused.clear()
    yield
    slack.limit("chat.startStream", 20)
    slack.streaming_refused = None
    streaming._refused.clear()


def _ask(driver: Driver, channel: str, question: str) -> tuple[dict[str, Any], dict[str, Any]]:
    seen = {m["ts"] for m in driver.slack.channel_messages(channel)}
    driver.command("/ask", question, channel)
    post = driver.slack.wait_for(
        lambda: [m for m in driver.slack.channel_messages(channel) if question in m["text"] and m["ts"] not in seen]
    )[0]
    return post, driver.final_reply(channel, post["ts"])


def test_an_answer_streams_with_a_task_timeline_then_sources_and_feedback(
    driver: Driver, slack: SlackStandIn, paper_channel: str, streams: None
) -> None:
    calls_before = len(slack.api_calls)
    post, answer = _ask(driver, paper_channel, QUESTION)
    name = slack.state.channels[paper_channel].name
    assert answer["stream_state"] == "complete" and answer["thread_ts"] == post["ts"]
    tasks = answer["tasks"]
    assert list(tasks) == [messages.TASK_SEARCH, messages.TASK_RERANK, messages.TASK_WRITE]
    assert tasks["search"] == {"title": f"Searching 1 document in #{name}", "status": "complete"}
    assert tasks["rerank"]["title"].startswith("Reranked to ") and tasks["rerank"]["title"].endswith(" passages")
    assert tasks["write"] == {"title": "Picking the supporting sentences", "status": "complete"}  # offline
    assert re.search(r"\[\d+\]", answer["text"]) and "Thinking" not in answer["text"]
    shown = json.dumps(answer["blocks"], ensure_ascii=False)
    assert "*Sources*" in shown and "Attention Is All You Need" in shown
    assert answer["blocks"][-1]["type"] == "context_actions"
    assert answer["blocks"][-1]["elements"][0]["type"] == "feedback_buttons"
    assert not any(str(b.get("block_id")).startswith(messages.ANSWER_BLOCK + "-0") for b in answer["blocks"])
    calls = [c for c in slack.api_calls[calls_before:] if c.args.get("channel") == paper_channel]
    methods = [c.method for c in calls if c.method.startswith("chat.")]
    assert methods.count("chat.startStream") == 1 and methods.count("chat.stopStream") == 1
    assert len(methods) <= 6 and "chat.update" not in methods  # question post, start, ≤ 3 appends, stop
    assert all(c.response["ok"] for c in calls)
    start = next(c for c in calls if c.method == "chat.startStream")
    assert start.args["recipient_user_id"] == USER and start.args["recipient_team_id"] == slack.state.team_id


def test_a_vote_on_the_feedback_buttons_is_stored_and_acknowledged(
    driver: Driver, slack: SlackStandIn, citebot: Citebot, paper_channel: str, streams: None
) -> None:
    _, answer = _ask(driver, paper_channel, "How many layers does the encoder have?")
    element = answer["blocks"][-1]["elements"][0]
    click = slack.block_action(
        channel=paper_channel,
        message_ts=answer["ts"],
        user=USER,
        action={
            "type": "feedback_buttons",
            "action_id": element["action_id"],
            "block_id": answer["blocks"][-1]["block_id"],
            "value": element["negative_button"]["value"],
        },
    )
    driver.click(click)
    response = slack.wait_for(lambda: driver.responses_for(click["response_url"]))[0]
    assert response["response_type"] == "ephemeral" and response["text"] == messages.FEEDBACK_THANKS[False]
    key = f"{paper_channel}:{answer['ts']}"
    rows = slack.wait_for(lambda: [r for r in citebot.feedback_report() if r["answer_key"] == key])
    assert rows[0]["helpful"] is False and rows[0]["user"] == USER
    assert rows[0]["question"] == "How many layers does the encoder have?"


def test_where_slack_refuses_to_stream_the_answer_is_edited_into_a_placeholder(
    driver: Driver, slack: SlackStandIn, paper_channel: str, streams: None
) -> None:
    slack.streaming_refused = "not_allowed_token_type"
    calls_before = len(slack.api_calls)
    post, answer = _ask(driver, paper_channel, "What is the dimensionality of the model?")
    refused = [c for c in slack.api_calls[calls_before:] if c.method == "chat.startStream"]
    assert refused and refused[0].response["error"] == "not_allowed_token_type"
    assert "stream_state" not in answer and answer["blocks"][0]["block_id"].startswith(messages.ANSWER_BLOCK)
    assert re.search(r"\[\d+\]", answer["text"]) and blocks_error(answer["blocks"]) is None
    assert answer["blocks"][-1]["type"] == "context_actions"
    updates = [c for c in slack.api_calls[calls_before:] if c.method == "chat.update" and c.args.get("ts") == answer["ts"]]
    assert updates and updates[-1].response["ok"]
    # The refusal is remembered: the next answer goes straight to the placeholder.
    _ask(driver, paper_channel, "How many attention heads are used?")
    assert len([c for c in slack.api_calls[calls_before:] if c.method == "chat.startStream"]) == 1


def test_a_stream_rate_limited_at_its_start_falls_back_without_waiting(
    http: Driver, slack: SlackStandIn, paper_channel: str, streams: None
) -> None:
    slack.limit("chat.startStream", 1, burst=0)
    calls_before = len(slack.api_calls)
    _, answer = _ask(http, paper_channel, "What dropout rate was used?")
    limited = [c for c in slack.api_calls[calls_before:] if c.method == "chat.startStream"]
    assert [c.response["error"] for c in limited] == ["ratelimited"]  # tried once, not retried
    assert answer["blocks"][0]["block_id"].startswith(messages.ANSWER_BLOCK) and "[1]" in answer["text"]
    assert not streaming._refused  # a 429 is not a refusal: the next answer streams again


def test_text_is_buffered_but_never_held_longer_than_the_flush_interval(slack: SlackStandIn, streams: None) -> None:
    """From the worker thread: progress, then text in small pieces. Short text waits in the buffer
    (no call per partial) but goes out once it has waited STREAM_FLUSH_S; the rest at the stop."""
    channel = new_channel(slack)

    async def scenario() -> tuple[str, str]:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        root = (await client.chat_postMessage(channel=channel, text="question"))["ts"]
        stream = await streaming.NativeStream.open(
            client, channel=channel, thread_ts=root, user=USER, team=slack.state.team_id, offline=False
        )
        assert stream is not None

        stream.searching(2)

        def worker() -> None:
            stream.progress("relevant_passages", ["p"])
            for i in range(5):
                stream.partial("".join(f"word{j} " for j in range(i + 1)))
                time.sleep(0.1)
            time.sleep(streaming.STREAM_FLUSH_S)
            stream.partial("".join(f"word{j} " for j in range(7)))

        await asyncio.to_thread(worker)
        await asyncio.sleep(0.5)
        assert await stream.finish("word0 word1 word2 word3 word4 word5 word6 [1].", [messages.feedback_block("k", "q")])
        return root, stream.ts

    root, ts = asyncio.run(scenario())
    appends = [c for c in slack.calls("chat.appendStream") if c.args.get("ts") == ts]
    texts = [ch["text"] for c in appends for ch in c.args.get("chunks") or [] if ch["type"] == "markdown_text"]
    assert len(appends) == 2 and texts == ["word0 word1 word2 word3 word4 word5 word6 "]  # timeline, one text flush
    message = [m for m in slack.thread(channel, root) if m["ts"] == ts][0]
    assert message["text"] == "word0 word1 word2 word3 word4 word5 word6 [1]."
    assert message["tasks"]["search"]["title"] == f"Searching 2 documents in #{slack.state.channels[channel].name}"
    assert message["tasks"]["rerank"]["title"] == "Reranked to 1 passage"
    assert message["blocks"][-1]["type"] == "context_actions" and message["stream_state"] == "complete"
