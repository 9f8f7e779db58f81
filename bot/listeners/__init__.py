"""One module per feature; each has ``register(app, deps)`` and turns its Slack event (parsed once,
``bot.incoming``) into one ``Citebot`` call in a worker thread, directly or through
``bot.answering`` for questions; no listener imports another.

Bolt runs the first listener whose event and matchers fit, so ``files`` (messages with files)
registers before ``mentions``, and ``arxiv_search`` (``/arxiv search …``) before ``arxiv``;
``assistant`` (the AI app panel) is a middleware that takes the panel's own events and questions
and lets everything else through.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.listeners import arxiv, arxiv_search, ask, assistant, docs, feedback, files, forget, home, mentions


def register_all(app: AsyncApp, deps: Deps) -> None:
    for feature in (assistant, files, mentions, ask, arxiv_search, arxiv, docs, forget, feedback, home):
        feature.register(app, deps)

    @app.event("message")
    async def ignore_other_messages() -> None:
        """Edits, deletions, joins…: acknowledged (so Slack does not retry) and ignored."""
