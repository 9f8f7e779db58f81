"""One module per feature; each has ``register(app, deps)`` and turns its Slack event into one
``Citebot`` call (in a worker thread) and the result into a Slack message."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.listeners import arxiv, ask, docs, feedback, files, forget, mentions


def register_all(app: AsyncApp, deps: Deps) -> None:
    for feature in (files, mentions, ask, arxiv, docs, forget, feedback):
        feature.register(app, deps)

    @app.event("message")
    async def ignore_other_messages() -> None:
        """Edits, deletions, joins…: acknowledged (so Slack does not retry) and ignored."""
