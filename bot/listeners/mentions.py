"""@mentions, DMs and follow-ups in threads the bot answered → ``answer_message`` → ``Citebot.ask``.

Decide first, read second. A message is for the bot when it mentions the bot or is in a DM with
it (``Incoming.addressed``): claimed at once (a mention arrives twice, as ``app_mention`` and as
``message``), then its thread is read for history. A thread reply without a mention is for the bot
only when the bot answered in that thread: remembered when it did, else the thread is read once
(failures logged, never posted: nobody asked the bot anything) and remembered either way. Canvas
mentions (``document_mention``) and other subtypes are ignored.
"""

from __future__ import annotations

import asyncio

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.answering import Thread, answer_message, read_thread_of
from bot.deps import Deps, log
from bot.guard import on_message
from bot.incoming import Incoming


def register(app: AsyncApp, deps: Deps) -> None:
    async def _read_once(message: Incoming, client: AsyncWebClient) -> Thread | None:
        """Read a thread and remember whether it is the bot's; concurrent replies share one read."""

        async def read() -> Thread | None:
            thread = await read_thread_of(client, message)
            answered = thread is not None and thread.bot_answered
            (deps.answered_threads if answered else deps.unrelated_threads).add(message.thread_key)
            return thread

        pending = deps.reading.get(message.thread_key)
        if pending is None:
            pending = deps.reading[message.thread_key] = asyncio.ensure_future(read())
            pending.add_done_callback(lambda _: deps.reading.pop(message.thread_key, None))
        return await asyncio.shield(pending)

    @on_message(
        app,
        deps,
        "app_mention",
        {"type": "message", "subtype": [None, "thread_broadcast"]},
        report_if=lambda message: message.addressed,
    )
    async def on_question(message: Incoming, client: AsyncWebClient) -> None:
        if not message.written_by_a_person:
            log.info("ignoring %s in %s", message.subtype, message.channel)
            return
        if message.addressed or message.thread_key in deps.answered_threads:
            if not await deps.claims.first(message.claim_key):
                return
            thread = await read_thread_of(client, message)
        elif message.thread_ts is not None and message.thread_key not in deps.unrelated_threads:
            thread = await _read_once(message, client)
            if thread is None or not thread.bot_answered or not await deps.claims.first(message.claim_key):
                return
        else:
            return
        await answer_message(deps, client, message, thread)
