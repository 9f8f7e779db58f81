"""/forget DOC → ``Citebot.forget(doc, scope)`` → what was removed (in the channel) or why not."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot import messages
from bot.deps import Deps
from bot.guard import on_command
from bot.incoming import Command


def register(app: AsyncApp, deps: Deps) -> None:
    @on_command(app, deps, "/forget")
    async def on_forget(command: Command) -> None:
        doc = command.text.strip()
        if not doc:
            await command.tell(messages.FORGET_USAGE)
            return
        removed = await deps.capacity.questions.run(deps.citebot.forget, doc, command.scope)
        await command.respond(text=messages.forgot_text(removed), response_type="in_channel")
