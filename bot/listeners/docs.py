"""/docs → ``Citebot.documents`` of this channel, 20 per page with Next/Previous buttons (ephemeral)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import messages
from bot.deps import Deps, scope_for
from bot.guard import never_silent


def register(app: AsyncApp, deps: Deps) -> None:
    async def show(respond: AsyncRespond, context: AsyncBoltContext, channel: str, page: int, replace: bool) -> None:
        docs = await asyncio.to_thread(deps.citebot.documents, scope_for(context, channel))
        text, blocks = messages.docs_blocks(docs, page)
        await respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=replace)

    @app.command("/docs")
    async def on_docs(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond) -> None:
        await ack()
        report = lambda text: respond(text=text, response_type="ephemeral")  # noqa: E731
        async with never_silent(deps, report, "/docs"):
            await show(respond, context, command["channel_id"], 0, replace=False)

    @app.action(re.compile(f"^{messages.DOCS_PAGE}"))
    async def on_docs_page(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        report = lambda text: respond(text=text, response_type="ephemeral", replace_original=False)  # noqa: E731
        async with never_silent(deps, report, "/docs page"):
            channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
            await show(respond, context, channel, int(action.get("value") or 0), replace=True)
