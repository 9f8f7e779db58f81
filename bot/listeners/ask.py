"""/ask question → "<@user> asked: …" in the channel → ``answer_in_thread`` (``Citebot.ask``) in its thread."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot import messages
from bot.answering import UsageError, answer_in_thread, parse_ask
from bot.deps import Deps
from bot.guard import on_command, post_or_explain
from bot.incoming import Command


def register(app: AsyncApp, deps: Deps) -> None:
    @on_command(app, deps, "/ask")
    async def on_ask(command: Command) -> None:
        try:
            options = parse_ask(command.text)
        except UsageError as usage:
            await command.tell(str(usage))
            return
        if not await deps.claims.first(command.claim_key):
            return
        text, blocks = messages.question_message(command.user, options.question)
        ts = await post_or_explain(command, text=text, blocks=blocks)
        if ts is not None:
            await answer_in_thread(
                deps,
                command.client,
                scope=command.scope,
                channel=command.channel,
                thread_ts=ts,
                options=options,
                user=command.user,
            )
