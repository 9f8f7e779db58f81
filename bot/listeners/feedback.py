"""👍/👎 on an answer (Slack's feedback_buttons, or the plain buttons of older answers) →
``Citebot.record_feedback`` → an ephemeral thank-you."""

from __future__ import annotations

import json

from slack_bolt.async_app import AsyncApp

from bot import messages
from bot.deps import Deps
from bot.guard import on_click
from bot.incoming import Click


def register(app: AsyncApp, deps: Deps) -> None:
    @on_click(app, deps, f"^({messages.FEEDBACK}|{messages.FEEDBACK_UP}|{messages.FEEDBACK_DOWN})$")
    async def on_feedback(click: Click) -> None:
        value = json.loads(click.value or "{}")
        if click.action_id == messages.FEEDBACK:  # feedback_buttons: the pressed button's value says which
            helpful = bool(value.get("h"))
        else:
            helpful = click.action_id == messages.FEEDBACK_UP
        await deps.capacity.questions.run(
            deps.citebot.record_feedback, value.get("k", ""), click.scope, click.user, helpful, value.get("q", "")
        )
        await click.tell(messages.FEEDBACK_THANKS[helpful])
