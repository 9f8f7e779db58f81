"""Is a message talking to the bot, and answering it in its thread (with the thread as history).

A message is addressed to the bot when it mentions the bot, is in a DM with the bot, or is a reply
in a thread where the bot has already answered (found with ``conversations.replies``, so it works
across restarts and replicas).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.answering import UsageError, answer_in_thread, parse_ask, strip_mentions, thread_history
from bot.deps import Deps, scope_for


def mentions_bot(context: AsyncBoltContext, event: dict[str, Any]) -> bool:
    bot_user = context.bot_user_id or ""
    return event.get("type") == "app_mention" or (bool(bot_user) and f"<@{bot_user}" in (event.get("text") or ""))


def is_dm(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


async def _thread(client: AsyncWebClient, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    response = await client.conversations_replies(channel=channel, ts=thread_ts, limit=100)
    return list(response.get("messages") or [])


def _bot_answered(thread: list[dict[str, Any]], context: AsyncBoltContext) -> bool:
    return any(
        (m.get("bot_id") == context.bot_id or m.get("user") == context.bot_user_id) and messages.is_answer_message(m)
        for m in thread
    )


async def addressed_thread(
    deps: Deps,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    event: dict[str, Any],
) -> list[dict[str, Any]] | None:
    """The thread's messages when ``event`` is addressed to the bot, else None (no API call unless
    the message is a thread reply without a mention)."""
    channel, ts = event["channel"], event["ts"]
    thread_ts = event.get("thread_ts")
    if mentions_bot(context, event) or is_dm(event):
        return await _thread(client, channel, thread_ts) if thread_ts and thread_ts != ts else []
    if not thread_ts or thread_ts == ts:
        return None
    thread = await _thread(client, channel, thread_ts)
    if (channel, thread_ts) in deps.answered_threads or _bot_answered(thread, context):
        deps.answered_threads.add((channel, thread_ts))
        return thread
    return None


async def answer_message(
    deps: Deps,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    event: dict[str, Any],
    thread: list[dict[str, Any]],
) -> None:
    """Answer the question in ``event`` in its thread, with the earlier thread messages as history."""
    channel, ts = event["channel"], event["ts"]
    thread_ts = event.get("thread_ts") or ts
    text = strip_mentions(event.get("text") or "")
    try:
        options = parse_ask(text)
    except UsageError as usage:
        hint = "Ask me a question after the mention, e.g. `@citebot What optimizer was used?`"
        await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=hint if not text else str(usage))
        return
    history = thread_history(thread, bot_user_id=context.bot_user_id or "", bot_id=context.bot_id or "", before_ts=ts)
    await answer_in_thread(
        deps,
        client,
        scope=scope_for(context, channel),
        channel=channel,
        thread_ts=thread_ts,
        options=options,
        history=history,
    )
