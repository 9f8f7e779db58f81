"""Never silent to the person who asked, never noisy elsewhere: the one preamble of every listener.

``on_command``, ``on_click`` and ``on_message`` register a handler with bolt: they acknowledge,
parse the payload once (``bot.incoming``) and run the handler as tracked work inside
``never_silent``, which reports a failure to the person who asked (ephemerally for commands and
clicks; in the thread for messages addressed to the bot) and only logs failures on anything else.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import Deps, log
from bot.incoming import Click, Command, Incoming
from citebot.errors import CitebotError

Report = Callable[[str], Awaitable[Any]]


async def report_safely(report: Report, text: str) -> None:
    try:
        await report(text)
    except Exception:
        log.exception("could not tell the user: %s", text)


@asynccontextmanager
async def never_silent(deps: Deps, report: Report | None, what: str) -> AsyncIterator[None]:
    """Run the body as tracked work; a ``CitebotError`` is reported with its own message, any other
    exception is logged with its traceback and reported as a generic failure. ``report=None``: the
    work was not asked for by anyone (yet), so failures are only logged."""
    task = asyncio.current_task()
    if task is not None:
        deps.inflight.add(task)
    try:
        yield
    except CitebotError as error:
        log.info("%s: %s", what, error)
        if report is not None:
            await report_safely(report, messages.error_text(str(error)))
    except Exception:
        log.exception("%s failed", what)
        if report is not None:
            await report_safely(report, messages.GENERIC_ERROR)
    finally:
        if task is not None:
            deps.inflight.discard(task)


def on_command(
    app: AsyncApp, deps: Deps, name: str, matchers: list[Callable[..., Awaitable[bool]]] | None = None
) -> Callable[[Callable[[Command], Awaitable[None]]], Any]:
    """Register ``handler(command)`` for the slash command ``name`` (when ``matchers`` agree: bolt
    then runs the first registered listener that matches)."""

    def register(handler: Callable[[Command], Awaitable[None]]) -> Any:
        async def listener(
            ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, respond: AsyncRespond
        ) -> None:
            await ack()
            parsed = Command.parse(command, context, client, respond)
            async with never_silent(deps, parsed.tell, name):
                await handler(parsed)

        app.command(name, matchers=matchers)(listener)
        return handler

    return register


def on_click(app: AsyncApp, deps: Deps, action_ids: str) -> Callable[[Callable[[Click], Awaitable[None]]], Any]:
    """Register ``handler(click)`` for buttons whose action_id matches the regex ``action_ids``."""

    def register(handler: Callable[[Click], Awaitable[None]]) -> Any:
        async def listener(
            ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
        ) -> None:
            await ack()
            click = Click.parse(body, action, context, respond)
            async with never_silent(deps, lambda text: click.tell(text), f"click {click.action_id}"):
                await handler(click)

        app.action(re.compile(action_ids))(listener)
        return handler

    return register


MessageHandler = Callable[[Incoming, AsyncWebClient], Awaitable[None]]


def on_message(
    app: AsyncApp,
    deps: Deps,
    *events: str | dict[str, Any],
    report_if: Callable[[Incoming], bool],
    matchers: list[Callable[..., Awaitable[bool]]] | None = None,
) -> Callable[[MessageHandler], MessageHandler]:
    """Register ``handler(message, client)`` for message-like ``events``; a failure is reported in
    the message's thread when ``report_if(message)``, else only logged."""

    def register(handler: MessageHandler) -> MessageHandler:
        async def listener(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
            message = Incoming.parse(event, context)

            async def report(text: str) -> None:
                await client.chat_postMessage(channel=message.channel, thread_ts=message.reply_thread, text=text)

            what = f"{event.get('type')} {message.channel}/{message.ts}"
            async with never_silent(deps, report if report_if(message) else None, what):
                await handler(message, client)

        for event in events:
            app.event(event, matchers=matchers)(listener)
        return handler

    return register


async def post_or_explain(command: Command, *, text: str, blocks: list[dict[str, Any]] | None = None) -> str | None:
    """Post in the command's conversation; when the bot cannot post there, tell the person (only
    them) why. Returns the posted message's ts, or None when it could not be posted."""
    try:
        posted = await command.client.chat_postMessage(channel=command.channel, text=text, blocks=blocks)
    except SlackApiError as error:
        if error.response.get("error") in ("not_in_channel", "channel_not_found", "is_archived"):
            await command.tell(messages.cannot_post_text(in_dm=command.in_dm))
            return None
        raise
    return str(posted["ts"])
