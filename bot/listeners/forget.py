"""/forget DOC → which document (``Citebot.find_document``) → an ephemeral "Remove <title>?" with
Remove / Cancel buttons → on Remove, ``Citebot.forget_document`` and a note in the channel.

Only the person who added the document to this channel, or a workspace admin or owner
(``users.info``: ``is_admin`` / ``is_owner``; scope ``users:read``), may remove it. That is checked
when the command is typed; the prompt is shown to that person only, and its Remove button names
them, so a click by anyone else (or on a document no longer in the channel) removes nothing."""

from __future__ import annotations

import json

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot import messages
from bot.deps import Deps, log
from bot.guard import on_click, on_command
from bot.incoming import Click, Command
from citebot.errors import DocumentNotFound


def register(app: AsyncApp, deps: Deps) -> None:
    @on_command(app, deps, "/forget")
    async def on_forget(command: Command) -> None:
        text = command.text.strip()
        if not text:
            await command.tell(messages.FORGET_USAGE)
            return
        doc = await deps.capacity.questions.run(deps.citebot.find_document, text, command.scope)
        adder = await deps.capacity.questions.run(deps.citebot.added_by, doc, command.scope)
        if command.user != adder and not await _is_admin(command):
            await command.tell(messages.forget_refused_text(doc, adder))
            return
        prompt, blocks = messages.forget_prompt(doc, adder, command.user)
        await command.tell(prompt, blocks)

    @on_click(app, deps, f"^{messages.FORGET_CONFIRM}$")
    async def on_confirm(click: Click) -> None:
        value = json.loads(click.value or "{}")
        if value.get("u") != click.user:
            raise DocumentNotFound("That button was not meant for you; nothing was removed.")
        removed = await deps.capacity.questions.run(deps.citebot.forget_document, str(value.get("d", "")), click.scope)
        await click.respond(delete_original=True)
        await click.respond(text=messages.forgot_text(removed), response_type="in_channel", replace_original=False)

    @on_click(app, deps, f"^{messages.FORGET_CANCEL}$")
    async def on_cancel(click: Click) -> None:
        await click.tell(messages.FORGET_CANCELLED, replace=True)


async def _is_admin(command: Command) -> bool:
    try:
        user = (await command.client.users_info(user=command.user)).get("user") or {}
    except SlackApiError as error:
        log.warning("users.info for %s failed (%s): treated as not an admin", command.user, error.response.get("error"))
        return False
    return bool(user.get("is_admin") or user.get("is_owner"))
