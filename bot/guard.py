"""Never silent: every piece of background work ends in a reply, even when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import Deps, log
from citebot.errors import CitebotError

Report = Callable[[str], Awaitable[Any]]


async def report_safely(report: Report, text: str) -> None:
    try:
        await report(text)
    except Exception:
        log.exception("could not tell the user: %s", text)


@asynccontextmanager
async def never_silent(deps: Deps, report: Report, what: str) -> AsyncIterator[None]:
    """Run the body as tracked work; a ``CitebotError`` is reported with its own message, any other
    exception is logged with its traceback and reported as a generic failure."""
    task = asyncio.current_task()
    if task is not None:
        deps.inflight.add(task)
    try:
        yield
    except CitebotError as error:
        log.info("%s: %s", what, error)
        await report_safely(report, messages.error_text(str(error)))
    except Exception:
        log.exception("%s failed", what)
        await report_safely(report, messages.GENERIC_ERROR)
    finally:
        if task is not None:
            deps.inflight.discard(task)


async def post_or_explain(
    client: AsyncWebClient,
    respond: AsyncRespond,
    *,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
) -> str | None:
    """Post in ``channel``; when the bot is not in it, tell the user (ephemerally) how to invite it.

    Returns the posted message's ts, or None when it could not be posted.
    """
    try:
        posted = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    except SlackApiError as error:
        if error.response.get("error") in ("not_in_channel", "channel_not_found", "is_archived"):
            await respond(text=messages.not_in_channel_text(), response_type="ephemeral", replace_original=False)
            return None
        raise
    return str(posted["ts"])
