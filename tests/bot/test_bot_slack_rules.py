"""Behaving as real Slack requires (issue 11), against the strict stand-in, in HTTP and Socket Mode:
canvas mentions, other people's threads, rate-limited streaming, file_shared errors, group DMs,
re-shares where the bot is not a member, verbatim questions, hidden links, and the smaller cases."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest

from bot import messages
from bot.answering import ThrottledUpdater
from bot.app import make_client
from bot.pacing import PartialBudget
from citebot.domain import Scope
from citebot.settings import Settings
from dataflows.app import Citebot
from tests.bot.harness import (
    ATTENTION,
    USER,
    Driver,
    bot_posts,
    forget_confirmed,
    new_channel,
    one_page_pdf,
    share_file,
    thread_texts,
    wait_quiet,
)
from tests.standins.background import Fault
from tests.standins.slack_server import SlackStandIn

QUESTION = "What optimizer was used to train the Transformer?"


def _feedback_question(message: dict[str, Any]) -> str:
    feedback = [b for b in message.get("blocks") or [] if b.get("block_id") == messages.FEEDBACK_BLOCK]
    return messages.feedback_of(feedback[-1])["q"]


# --- 1. canvas mentions -------------------------------------------------------------------------
def test_canvas_mentions_are_not_answered(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    driver.deliver(slack.document_mention_event(channel, user=USER))
    wait_quiet(slack, 1.0)
    assert bot_posts(slack, channel) == []


# --- 2. other people's threads -------------------------------------------------------------------
def test_other_peoples_threads_are_read_once_and_failures_never_posted(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    root = slack.user_message(channel, USER, "lunch?")
    first = slack.user_message(channel, "U0OTHER", "sure", thread_ts=root["ts"])
    slack.faults.append(Fault(status=500, path="conversations.replies"))  # Slack fails the one read
    driver.deliver(slack.message_event(channel, first))
    slack.wait_for(lambda: [r for r in slack.requests if r.fault is not None and "conversations.replies" in r.path])
    for text in ("at noon", "ok", "see you"):
        driver.deliver(slack.message_event(channel, slack.user_message(channel, "U0OTHER", text, thread_ts=root["ts"])))
    wait_quiet(slack, 1.0)
    assert bot_posts(slack, channel) == []  # no ":warning: Something went wrong" in a thread nobody asked in
    reads = [c for c in slack.calls("conversations.replies") if c.args.get("ts") == root["ts"]]
    assert len(reads) == 1  # (the failed read is not recorded) the next decided the thread is not the bot's, once


def test_a_threaded_mention_reads_its_thread_once(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    root = slack.user_message(channel, USER, "Reading group notes")
    mention = slack.user_message(channel, USER, f"<@{slack.state.bot_user_id}> {QUESTION}", thread_ts=root["ts"])
    driver.deliver(slack.app_mention_event(channel, mention))
    driver.deliver(slack.message_event(channel, mention))
    driver.final_reply(channel, root["ts"])
    wait_quiet(slack, 1.0)
    assert len([c for c in slack.calls("conversations.replies") if c.args.get("ts") == root["ts"]]) == 1


# --- 3. streaming within chat.update's tier -------------------------------------------------------
def test_partials_share_the_workspace_budget_and_never_delay_final_answers(
    slack: SlackStandIn, bot_settings: Settings
) -> None:
    """Three answers streaming at once: partial updates stay within one workspace budget, nothing
    is rate-limited, and closing a stream returns at once so the final answer goes out."""
    channel = new_channel(slack)
    calls_before = len(slack.api_calls)

    async def scenario() -> list[float]:
        client, partial_client = make_client(bot_settings), make_client(bot_settings, wait_on_429=False)
        budget = PartialBudget()
        placeholders = [(await client.chat_postMessage(channel=channel, text="Thinking…"))["ts"] for _ in range(3)]
        updaters = [ThrottledUpdater(partial_client, channel, ts, 0.05, budget, "T111") for ts in placeholders]

        def worker(updater: ThrottledUpdater) -> None:
            text = ""
            for i in range(60):
                text += f"word{i} "
                updater.push(text)
                time.sleep(0.05)

        await asyncio.gather(*(asyncio.to_thread(worker, u) for u in updaters))
        closing = []
        for updater, ts in zip(updaters, placeholders, strict=True):
            started = time.monotonic()
            await updater.close()
            closing.append(time.monotonic() - started)
            await client.chat_update(channel=channel, ts=ts, text="final answer")
        return closing

    closing = asyncio.run(scenario())
    updates = [c for c in slack.api_calls[calls_before:] if c.method == "chat.update"]
    partials = [c for c in updates if c.args.get("text", "").endswith("▍")]
    assert all(c.response.get("ok") for c in updates), [c.response.get("error") for c in updates]
    assert 1 <= len(partials) <= 6  # a burst of 3, then 20 a minute for the workspace (~3 s here)
    assert max(closing) < 0.5
    assert [m["text"] for m in slack.channel_messages(channel)] == ["final answer"] * 3


def test_partials_are_skipped_while_slack_rate_limits(slack: SlackStandIn, bot_settings: Settings) -> None:
    channel = new_channel(slack)
    slack.limit("chat.update", per_minute=2, burst=1)
    try:

        async def scenario() -> float:
            client = make_client(bot_settings, wait_on_429=False)
            ts = (await client.chat_postMessage(channel=channel, text="Thinking…"))["ts"]
            budget = PartialBudget(per_minute=600)
            updater = ThrottledUpdater(client, channel, ts, 0.05, budget, "T111")
            for i in range(40):
                updater.push(f"text {i}")
                await asyncio.sleep(0.05)
            started = time.monotonic()
            await updater.close()
            return time.monotonic() - started

        closing = asyncio.run(scenario())
    finally:
        slack.reset_limits()
    limited = [c for c in slack.calls("chat.update") if c.args.get("channel") == channel and not c.response.get("ok")]
    assert len(limited) == 1  # one 429, then silence until Retry-After (30 s) has passed
    assert closing < 0.5


# --- 4. file_shared errors -----------------------------------------------------------------------
def test_file_shared_for_a_deleted_file_is_logged_not_posted(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    file = slack.add_file(b"\x89PNG\r\n\x1a\n", "picture.png", user=USER)
    slack.user_message(channel, USER, "", files=[file])
    slack.delete_file(file["id"])  # deleted within the grace period
    driver.deliver(slack.file_shared_event(channel, file["id"], user=USER))
    slack.wait_for(lambda: [c for c in slack.calls("files.info") if c.args.get("file") == file["id"]])
    wait_quiet(slack, 1.0)
    assert bot_posts(slack, channel) == []


def test_file_shared_errors_after_a_pdf_is_known_go_to_the_files_thread(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    file = slack.add_file(ATTENTION.read_bytes(), "locked.pdf", user=USER, always_html=True)
    message = slack.user_message(channel, USER, "", files=[file])
    driver.deliver(slack.file_shared_event(channel, file["id"], user=USER))
    assert "login page" in slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]))[0]
    wait_quiet(slack, 1.0)
    assert all(c.args.get("thread_ts") == message["ts"] for c in bot_posts(slack, channel))


# --- 5. group DMs ---------------------------------------------------------------------------------
def test_group_dms_are_supported(driver: Driver, slack: SlackStandIn) -> None:
    mpim = "G" + new_channel(slack)[1:]
    slack.add_channel(mpim, "mpdm-a--b--citebot-1", kind="mpim")
    message, payload = share_file(slack, mpim, ATTENTION.read_bytes(), "attention.pdf")
    payload["event"]["channel_type"] = "mpim"
    driver.deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, mpim, message["ts"]) if "pages" in t], timeout=180)
    mention = slack.user_message(mpim, USER, f"<@{slack.state.bot_user_id}> {QUESTION}", thread_ts=message["ts"])
    driver.deliver(slack.app_mention_event(mpim, mention))

    def answers() -> list[dict[str, Any]]:
        return [
            m
            for m in slack.thread(mpim, message["ts"])
            if messages.is_answer_message(m) and m["text"] != messages.THINKING and "▍" not in m["text"]
        ]

    answer = slack.wait_for(answers, timeout=120)[0]
    assert "Sources" in json.dumps(answer["blocks"], ensure_ascii=False)
    follow = slack.user_message(mpim, USER, "And the learning rate?", thread_ts=message["ts"])
    driver.deliver(slack.message_event(mpim, follow))
    slack.wait_for(lambda: len(answers()) == 2, timeout=120)
    assert all(c.response.get("ok") for c in slack.calls("conversations.replies") if c.args.get("channel") == mpim)


# --- 7. re-shares where the bot is not a member -----------------------------------------------------
def test_a_reshare_into_a_channel_without_the_bot_is_not_indexed(
    driver: Driver, slack: SlackStandIn, citebot: Citebot
) -> None:
    seen, elsewhere = new_channel(slack), new_channel(slack, member=False)
    message, payload = share_file(slack, seen, ATTENTION.read_bytes(), "attention.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, seen, message["ts"]) if "pages" in t], timeout=180)
    file = message["files"][0]
    slack.user_message(elsewhere, USER, "look", files=[file])
    downloads = len([r for r in slack.requests if file["id"] in r.path])
    driver.deliver(slack.file_shared_event(elsewhere, file["id"], user=USER))
    slack.wait_for(lambda: [c for c in slack.calls("conversations.info") if c.args.get("channel") == elsewhere])
    wait_quiet(slack, 1.0)
    assert len([r for r in slack.requests if file["id"] in r.path]) == downloads
    assert citebot.documents(Scope(slack.state.team_id, elsewhere)) == []
    assert [c for c in slack.api_calls if c.args.get("channel") == elsewhere and c.method.startswith("chat.")] == []


# --- 8. message text ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def indexed_channel(slack: SlackStandIn, http_bot: Any) -> str:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "1706.03762.pdf")
    Driver(slack, http_bot, "http").deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t], timeout=180)
    return channel


def test_mention_questions_reach_the_bot_verbatim(driver: Driver, slack: SlackStandIn, indexed_channel: str) -> None:
    typed = "What's the model's size -- and is d_model < 1024 && \"big\"? --see <https://arxiv.org/abs/1706.03762|paper>"
    slack_text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    slack_text = slack_text.replace(
        "&lt;https://arxiv.org/abs/1706.03762|paper&gt;", "<https://arxiv.org/abs/1706.03762|paper>"
    )
    message = slack.user_message(indexed_channel, USER, f"<@{slack.state.bot_user_id}> {slack_text}")
    driver.deliver(slack.app_mention_event(indexed_channel, message))
    answer = driver.final_reply(indexed_channel, message["ts"])
    assert not answer["text"].startswith(":x:")
    expected = typed.replace("<https://arxiv.org/abs/1706.03762|paper>", "paper (https://arxiv.org/abs/1706.03762)")
    assert _feedback_question(answer) == expected


def test_ask_options_are_leading_flags_only(driver: Driver, slack: SlackStandIn, indexed_channel: str) -> None:
    payload = driver.command("/ask", "--top-k 3 Is --summary a flag? What's 'Adam'?", indexed_channel)
    post = slack.wait_for(lambda: [m for m in slack.channel_messages(indexed_channel) if "a flag?" in m["text"]])[0]
    assert post["text"] == f"<@{USER}> asked: Is --summary a flag? What's 'Adam'?"
    answer = driver.final_reply(indexed_channel, post["ts"])
    assert _feedback_question(answer) == "Is --summary a flag? What's 'Adam'?"
    assert not driver.responses_for(payload["response_url"])  # no usage error


def test_an_answer_slack_still_refuses_is_sent_as_text(driver: Driver, slack: SlackStandIn, indexed_channel: str) -> None:
    slack.max_block_text = 100  # below even a streamed answer's Sources and feedback blocks
    try:
        driver.command("/ask", "How many attention heads were used?", indexed_channel)
        post = slack.wait_for(
            lambda: [m for m in slack.channel_messages(indexed_channel) if "attention heads" in m["text"]]
        )[-1]
        answer = driver.final_reply(indexed_channel, post["ts"])
    finally:
        slack.max_block_text = 12_000
    assert answer.get("blocks") in (None, []) and "Sources:" in answer["text"] and re.search(r"\[\d+\]", answer["text"])


# --- issue 17.2: links from documents show their target ---------------------------------------------
def test_links_in_document_text_cannot_hide_their_target(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    pdf = one_page_pdf(
        [
            "The Zorblax model was trained with the",
            "[Adam optimizer settings](https://evil.example/phish) described in",
            "<https://evil.example/two|arxiv.org/abs/1706.03762> for the Zorblax experiments.",
        ]
    )
    message, payload = share_file(slack, channel, pdf, "zorblax.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t or ":x:" in t])
    driver.command("/ask", "Which optimizer settings was the Zorblax model trained with?", channel)
    post = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if "Zorblax model trained" in m["text"]])[0]
    answer = driver.final_reply(channel, post["ts"])
    shown = json.dumps(answer["blocks"], ensure_ascii=False) + answer["text"]
    assert "evil.example/phish" in shown  # the sentence was quoted…
    assert "|Adam optimizer settings>" not in shown and "|arxiv.org/abs/1706.03762>" not in shown  # …with no hidden link
    assert "<https://evil.example" not in shown


# --- 10. smaller cases ------------------------------------------------------------------------------
def test_a_pdf_with_a_caption_in_a_dm_is_indexed_not_answered(driver: Driver, slack: SlackStandIn) -> None:
    dm = new_channel(slack, "D")
    message, payload = share_file(slack, dm, one_page_pdf("Quarterly plans for the Zorblax team."), "plans.pdf")
    payload["event"]["channel_type"] = "im"
    driver.deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, dm, message["ts"]) if "pages" in t])
    wait_quiet(slack, 1.0)
    texts = thread_texts(slack, dm, message["ts"])
    assert len(texts) == 1 and messages.THINKING not in texts


def test_a_caption_that_mentions_the_bot_is_answered_once_after_indexing(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    pdf = one_page_pdf("The Wombat cache evicts entries after 90 seconds of idleness.")
    message, payload = share_file(slack, channel, pdf, "wombat.pdf")
    caption = f"<@{slack.state.bot_user_id}> How long until the Wombat cache evicts entries?"
    slack.state.messages[channel][-1]["text"] = caption
    payload["event"]["text"] = caption
    mention = slack.app_mention_event(channel, slack.state.messages[channel][-1])
    driver.deliver(mention)
    driver.deliver(payload)
    answer = driver.final_reply(channel, message["ts"])
    wait_quiet(slack, 1.0)
    texts = thread_texts(slack, channel, message["ts"])
    assert len(texts) == 2 and "pages" in texts[0] and "90 seconds" in answer["text"]


def test_ask_in_a_dm_between_two_people_says_why_not(driver: Driver, slack: SlackStandIn) -> None:
    dm = new_channel(slack, "D", member=False)
    payload = driver.command("/ask", QUESTION, dm)
    response = slack.wait_for(lambda: driver.responses_for(payload["response_url"]))[0]
    assert "direct message between other people" in response["text"] and "/invite" not in response["text"]


def test_google_drive_pdfs_get_upload_it_to_slack(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    file = slack.add_file(b"", "drive.pdf", user=USER, external=True)
    message = slack.user_message(channel, USER, "from Drive", files=[file])
    driver.deliver(slack.message_event(channel, message))
    text = slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]))[0]
    assert "Google Drive" in text and "Upload the PDF to Slack" in text


def test_already_indexed_links_the_file_just_shared(driver: Driver, slack: SlackStandIn) -> None:
    first_channel, channel = new_channel(slack, "G"), new_channel(slack)
    first, payload = share_file(slack, first_channel, ATTENTION.read_bytes(), "attention.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: thread_texts(slack, first_channel, first["ts"]), timeout=180)
    again, payload = share_file(slack, channel, ATTENTION.read_bytes(), "attention-again.pdf")
    driver.deliver(payload)
    text = slack.wait_for(lambda: thread_texts(slack, channel, again["ts"]), timeout=180)[0]
    assert again["files"][0]["permalink"] in text and first["files"][0]["permalink"] not in text


def test_resharing_after_forget_indexes_again(driver: Driver, slack: SlackStandIn, citebot: Citebot) -> None:
    channel = new_channel(slack)
    pdf = one_page_pdf("The Quokka protocol uses three rounds of gossip between replicas.")
    message, payload = share_file(slack, channel, pdf, "quokka.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t])
    assert "Removed" in forget_confirmed(driver, slack, "quokka", channel)["text"]
    assert citebot.documents(Scope(slack.state.team_id, channel)) == []
    file = message["files"][0]
    again = slack.user_message(channel, USER, "once more", files=[file])
    payload["event"] |= {"ts": again["ts"], "event_ts": again["ts"], "text": again["text"]}
    payload["event_id"] = payload["event_id"] + "2"
    driver.deliver(payload)
    text = slack.wait_for(lambda: thread_texts(slack, channel, again["ts"]))[0]
    assert text.startswith(":white_check_mark:") and "Quokka" in text
    slack.wait_for(lambda: "white_check_mark" in slack.reactions_on(channel, again["ts"]))
    assert [d.title for d in citebot.documents(Scope(slack.state.team_id, channel))]  # searchable here again


def test_arxiv_replies_are_paced_about_one_a_second(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    driver.command("/arxiv", "abc def ghi", channel)
    status = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if "arXiv" in m["text"]])[0]
    replies = slack.wait_for(lambda: len(slack.thread(channel, status["ts"])) == 3 and slack.thread(channel, status["ts"]))
    span = float(replies[-1]["ts"]) - float(replies[0]["ts"])
    assert span >= 1.8, span  # one a second (network jitter aside), not three at once


def test_missing_scopes_are_refused_like_slack(slack: SlackStandIn, bot_settings: Settings) -> None:
    """The stand-in grants only what manifest.yaml grants."""
    channel = new_channel(slack, "G")
    scopes = slack.scopes
    slack.scopes = scopes - {"groups:history"}
    try:

        async def read() -> Any:
            from slack_sdk.errors import SlackApiError

            try:
                await make_client(bot_settings).conversations_replies(channel=channel, ts="1.0")
            except SlackApiError as error:
                return error.response.data

        data = asyncio.run(read())
    finally:
        slack.scopes = scopes
    assert data["error"] == "missing_scope" and data["needed"] == "groups:history"
    assert {"mpim:history", "channels:read", "groups:read", "im:read", "mpim:read"} <= scopes
