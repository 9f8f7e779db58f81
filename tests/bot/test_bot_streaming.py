"""With a chat model (the stand-in OpenAI): the answer streams (natively, or into a placeholder where
Slack refuses to stream), then ends with Block Kit that respects Slack's limits and cannot ping anyone."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.answering import ThrottledUpdater
from bot.runner import BotServer
from citebot.settings import Settings
from dataflows.app import Citebot
from tests.bot.harness import ATTENTION, USER, BotThread, Driver, new_channel, share_file, thread_texts, wait_quiet
from tests.standins.openai_server import OpenAIStandin
from tests.standins.slack_server import SlackStandIn, blocks_error


@pytest.fixture(scope="module")
def llm_bot(bot_settings: Settings, slack: SlackStandIn) -> Iterator[tuple[BotThread, OpenAIStandin]]:
    with OpenAIStandin() as openai:
        settings = replace(
            bot_settings,
            openai_api_key="sk-standin",
            openai_base_url=openai.url + "/v1",
            embedding_backend="local",
            collection_prefix="BotTestLLM",
        )
        citebot = Citebot(settings)
        slack.limit("chat.startStream", 1000)  # every answer here streams, whatever ran before
        bot = BotThread(BotServer(settings, citebot, host="127.0.0.1", port=0)).start()
        try:
            yield bot, openai
        finally:
            bot.stop()
            citebot.close()
            slack.limit("chat.startStream", 20)


def test_answer_streams_then_renders_safely_within_limits(
    llm_bot: tuple[BotThread, OpenAIStandin], slack: SlackStandIn
) -> None:
    bot, openai = llm_bot
    driver = Driver(slack, bot, "http")
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "attention.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]), timeout=180)
    # ~3700 characters in under 800 words (the completion limit), so Slack needs two sections.
    long_tail = " ".join(
        f"Sentence{i}-about-**multi-head-attention**-in-the-encoder-and-decoder-stacks [1]." for i in range(60)
    )
    openai.next_replies.append(
        "## Training\nThey trained with **Adam** [1], see [the paper](https://arxiv.org/abs/1706.03762). "
        "<!channel> @here <@U0VICTIM> ping!\n- warmup 4000 steps [1]\n\n" + long_tail
    )
    chat_model = bot.server.deps.citebot.chat_model
    pace, chat_model.partial_every_s = chat_model.partial_every_s, 0.0  # a partial for every token
    try:
        driver.command("/ask", "What optimizer was used to train the Transformer?", channel)
        post = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if "asked:" in m["text"]])[0]
        answer = driver.final_reply(channel, post["ts"])
    finally:
        chat_model.partial_every_s = pace
    chat = [r for r in openai.requests if r.path.endswith("/chat/completions")][-1]
    assert chat.body["stream"] is True  # on_partial was passed, so the model streams
    appends = [c for c in slack.calls("chat.appendStream") if c.args.get("ts") == answer["ts"]]
    texts = [ch["text"] for c in appends for ch in c.args.get("chunks") or [] if ch["type"] == "markdown_text"]
    assert texts and all(c.response["ok"] for c in appends)  # text arrived before the stream stopped
    assert len(appends) <= 6  # buffered: ~500 partials (~3.7k characters) in a few calls
    assert answer["tasks"]["write"] == {"title": "Writing the answer", "status": "complete"}
    text = answer["text"]
    assert "## Training" in text and "**Adam**" in text
    assert "the paper (https://arxiv.org/abs/1706.03762)" in text  # a link shows its target
    assert "<!channel>" not in text and "<@U0VICTIM>" not in text and "@here" not in text
    assert "- warmup 4000 steps [1]" in text and text.rstrip().endswith("stacks [1].")
    blocks = answer["blocks"]
    assert blocks_error(blocks) is None and len(blocks) <= 50
    shown = json.dumps(blocks, ensure_ascii=False)
    assert "*Sources*" in shown and "<!channel>" not in shown and blocks[-1]["type"] == "context_actions"


def test_follow_up_passes_thread_history_to_the_model(llm_bot: tuple[BotThread, OpenAIStandin], slack: SlackStandIn) -> None:
    bot, openai = llm_bot
    driver = Driver(slack, bot, "http")
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "attention.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]), timeout=180)
    question = slack.user_message(channel, USER, f"<@{slack.state.bot_user_id}> Which optimizer was used?")
    driver.deliver(slack.app_mention_event(channel, question))
    driver.final_reply(channel, question["ts"])
    before = len(openai.requests)
    follow = slack.user_message(channel, USER, "And its beta values?", thread_ts=question["ts"])
    driver.deliver(slack.message_event(channel, follow))
    slack.wait_for(lambda: len([m for m in slack.thread(channel, question["ts"]) if m.get("bot_id")]) == 2)
    driver.final_reply(channel, question["ts"])
    chats = [r for r in openai.requests[before:] if r.path.endswith("/chat/completions")]
    sent = json.dumps(chats[-1].body["messages"], ensure_ascii=False)
    assert "Which optimizer was used?" in sent and "And its beta values?" in sent


def test_partial_text_from_a_worker_thread_is_throttled_to_one_update_per_interval(slack: SlackStandIn) -> None:
    """The on_partial bridge: a worker thread pushes text 50 times over ~2.5 s; Slack sees at most
    one chat.update per interval, the last partial, and nothing after close()."""
    channel = new_channel(slack)

    async def scenario() -> tuple[str, float]:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        ts = (await client.chat_postMessage(channel=channel, text="Thinking…"))["ts"]
        updater = ThrottledUpdater(client, channel, ts, interval_s=1.0)

        def worker() -> None:
            text = ""
            for i in range(50):
                text += f"word{i} "
                updater.push(text)
                time.sleep(0.05)

        started = time.monotonic()
        await asyncio.to_thread(worker)
        await asyncio.sleep(1.2)  # let the pump flush the last partial
        await updater.close()
        return ts, time.monotonic() - started

    ts, seconds = asyncio.run(scenario())
    updates = [c for c in slack.calls("chat.update") if c.args.get("ts") == ts]
    assert 2 <= len(updates) <= int(seconds) + 1
    assert "word49" in updates[-1].args["text"] and updates[-1].args["text"].endswith("▍")


def _answers(slack: SlackStandIn, channel: str, ts: str) -> list[dict]:
    return [
        m
        for m in slack.thread(channel, ts)
        if messages.is_answer_message(m) and m["text"] != messages.THINKING and "▍" not in m["text"]
    ]


def test_follow_up_history_is_the_latest_turns_of_a_long_thread(
    llm_bot: tuple[BotThread, OpenAIStandin], slack: SlackStandIn
) -> None:
    """Issue 11.6: Slack returns a thread oldest first, 1000 at most per page; history must be its end."""
    bot, openai = llm_bot
    driver = Driver(slack, bot, "http")
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "attention.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]), timeout=180)
    question = slack.user_message(channel, USER, f"<@{slack.state.bot_user_id}> Which optimizer was used?")
    driver.deliver(slack.app_mention_event(channel, question))
    slack.wait_for(lambda: _answers(slack, channel, question["ts"]), timeout=120)
    for i in range(250):
        slack.user_message(channel, "U0OTHER", f"note {i:03d}: was the Adam optimizer used?", thread_ts=question["ts"])
    before = len(openai.requests)
    follow = slack.user_message(channel, USER, "And its beta values?", thread_ts=question["ts"])
    driver.deliver(slack.message_event(channel, follow))
    slack.wait_for(lambda: len(_answers(slack, channel, question["ts"])) == 2, timeout=120)
    chats = [r for r in openai.requests[before:] if r.path.endswith("/chat/completions")]
    sent = json.dumps(chats[-1].body["messages"], ensure_ascii=False)
    assert "note 249" in sent and "note 000" not in sent and "And its beta values?" in sent
    pages = [c for c in slack.calls("conversations.replies") if c.args.get("ts") == question["ts"] and c.args.get("cursor")]
    assert pages  # the thread was paged through with cursors


def test_an_answer_citing_twenty_sources_fits_slacks_limits(
    llm_bot: tuple[BotThread, OpenAIStandin], slack: SlackStandIn
) -> None:
    """Issue 11.9: ~13k characters of blocks are refused (msg_blocks_too_long); the overflow sources
    go to a follow-up message in the thread."""
    bot, openai = llm_bot
    driver = Driver(slack, bot, "http")
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "attention.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]), timeout=180)
    openai.next_replies.append(
        " ".join(
            f"Finding-{n}-about-multi-head-attention-layers-and-their-training-schedule [{n}]. " * 4 for n in range(1, 21)
        )
    )
    calls_before = len(slack.api_calls)
    driver.command("/ask", "--top-k 20 Summarise every finding about attention with its source", channel)
    post = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if "asked:" in m["text"]])[0]
    answer = slack.wait_for(lambda: _answers(slack, channel, post["ts"]), timeout=120)[0]
    wait_quiet(slack, 1.0)
    refused = [(c.method, c.response.get("error")) for c in slack.api_calls[calls_before:] if not c.response.get("ok")]
    assert not refused
    shown = json.dumps(answer["blocks"], ensure_ascii=False)
    assert "*Sources*" in shown and "more sources in the next message" in shown
    more = [m for m in slack.thread(channel, post["ts"]) if "More sources" in json.dumps(m.get("blocks"))]
    assert more and more[0]["ts"] > answer["ts"]
