"""/docs → what is being indexed or queued in this channel, then ``Citebot.documents`` of this
channel, 20 per page with Next/Previous buttons (ephemeral)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot import messages
from bot.deps import Deps
from bot.guard import on_click, on_command
from bot.incoming import Click, Command
from bot.queueing import queue_entries


def register(app: AsyncApp, deps: Deps) -> None:
    async def show(request: Command | Click, page: int, *, replace: bool) -> None:
        docs = await deps.capacity.questions.run(deps.citebot.documents, request.scope)
        queue = queue_entries(deps, request.scope)
        text, blocks = messages.docs_blocks(docs, page, messages.queue_text(queue) if queue else "")
        await request.tell(text, blocks, replace=replace)

    @on_command(app, deps, "/docs")
    async def on_docs(command: Command) -> None:
        await show(command, 0, replace=False)

    @on_click(app, deps, f"^{messages.DOCS_PAGE}")
    async def on_docs_page(click: Click) -> None:
        await show(click, int(click.value or 0), replace=True)
