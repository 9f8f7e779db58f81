"""👍/👎 on an answer → ``Citebot.record_feedback`` → an ephemeral thank-you."""

from __future__ import annotations

import asyncio
import json
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
    @app.action(re.compile(f"^({messages.FEEDBACK_UP}|{messages.FEEDBACK_DOWN})$"))
    async def on_feedback(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        report = lambda text: respond(text=text, response_type="ephemeral", replace_original=False)  # noqa: E731
        async with never_silent(deps, report, "feedback"):
            value = json.loads(action.get("value") or "{}")
            channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
            helpful = action["action_id"] == messages.FEEDBACK_UP
            await asyncio.to_thread(
                deps.citebot.record_feedback,
                value.get("k", ""),
                scope_for(context, channel),
                body["user"]["id"],
                helpful,
                value.get("q", ""),
            )
            await report("Thanks for the feedback! :+1:" if helpful else "Thanks, noted. I'll use it to get better.")
