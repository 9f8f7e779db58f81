"""/ask question → "<@user> asked: …" in the channel → ``Citebot.ask`` answer in its thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.answering import UsageError, answer_in_thread, parse_ask
from bot.deps import Deps, scope_for
from bot.guard import never_silent, post_or_explain


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/ask")
    async def on_ask(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()

        async def report(text: str) -> None:
            await respond(text=text, response_type="ephemeral", replace_original=False)

        async with never_silent(deps, report, "/ask"):
            try:
                options = parse_ask(command.get("text") or "")
            except UsageError as usage:
                await report(str(usage))
                return
            if not await deps.claims.first(f"cmd:{command['trigger_id']}"):
                return
            channel = command["channel_id"]
            text, blocks = messages.question_message(command["user_id"], options.question)
            ts = await post_or_explain(client, respond, channel=channel, text=text, blocks=blocks)
            if ts is not None:
                await answer_in_thread(
                    deps, client, scope=scope_for(context, channel), channel=channel, thread_ts=ts, options=options
                )
