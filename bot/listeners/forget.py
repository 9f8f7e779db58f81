"""/forget DOC → ``Citebot.forget(doc, scope)`` → what was removed (in the channel) or why not."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import messages
from bot.deps import Deps, scope_for
from bot.guard import never_silent


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/forget")
    async def on_forget(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond) -> None:
        await ack()
        report = lambda text: respond(text=text, response_type="ephemeral")  # noqa: E731
        async with never_silent(deps, report, "/forget"):
            doc = (command.get("text") or "").strip()
            if not doc:
                await report(messages.FORGET_USAGE)
                return
            removed = await asyncio.to_thread(deps.citebot.forget, doc, scope_for(context, command["channel_id"]))
            await respond(text=messages.forgot_text(removed), response_type="in_channel")
