"""@mentions, DMs and follow-ups in answered threads → ``Citebot.ask`` (via ``answer_message``).

A mention arrives twice (``app_mention`` and ``message``); both claim the same (channel, ts) key,
so the question is answered once.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation import addressed_thread, answer_message
from bot.deps import Deps, scope_for
from bot.guard import never_silent
from bot.listeners.files import handle_file_message

ANSWERED_SUBTYPES = (None, "thread_broadcast")


async def handle_message(deps: Deps, client: AsyncWebClient, context: AsyncBoltContext, event: dict[str, Any]) -> None:
    if event.get("files"):
        await handle_file_message(deps, client, context, event)
        return
    thread = await addressed_thread(deps, client, context, event)
    if thread is None:
        return
    if not await deps.claims.first(f"msg:{scope_for(context, event['channel']).key}:{event['ts']}"):
        return
    await answer_message(deps, client, context, event, thread)


def register(app: AsyncApp, deps: Deps) -> None:
    async def on_message(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        thread_ts = event.get("thread_ts") or event["ts"]

        async def report(text: str) -> None:
            await client.chat_postMessage(channel=event["channel"], thread_ts=thread_ts, text=text)

        async with never_silent(deps, report, f"message {event['channel']}/{event['ts']}"):
            await handle_message(deps, client, context, event)

    app.event("app_mention")(on_message)
    app.event({"type": "message", "subtype": list(ANSWERED_SUBTYPES)})(on_message)
