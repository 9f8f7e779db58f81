"""The AI app panel (bolt ``AsyncAssistant``): a greeting and suggested prompts drawn from the
documents of the channel the user is viewing; questions asked there answered by
``answering.answer_in_thread`` (streamed) with a status and a title.

Which documents: the viewed channel's (from the thread context) only when the bot is a member of
that channel (``conversations.info``), else the DM's own: never a channel the bot cannot read, and
so never one the user cannot see. PDFs dropped into the panel are messages with files in the DM:
this listener lets them through to ``listeners/files.py``, which indexes them for the DM's scope.
Threads are remembered in memory (the newest 10,000): after a restart a panel thread is answered
as any DM thread is (from the DM's documents).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncAssistant
from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.async_store import AsyncAssistantThreadContextStore
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.say.async_say import AsyncSay
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.answering import AskOptions, answer_in_thread, history_before, read_thread_of
from bot.deps import Deps, log
from bot.guard import never_silent
from bot.incoming import Incoming, scope_of
from citebot.domain import Scope

PANEL_THREADS_REMEMBERED = 10_000


class PanelThreads(AsyncAssistantThreadContextStore):
    """Panel threads and their context (the channel the user was viewing), in memory."""

    def __init__(self, limit: int = PANEL_THREADS_REMEMBERED) -> None:
        self._contexts: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._limit = limit

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        self._contexts[(channel_id, thread_ts)] = dict(context)
        self._contexts.move_to_end((channel_id, thread_ts))
        while len(self._contexts) > self._limit:
            self._contexts.popitem(last=False)

    async def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        context = self._contexts.get((channel_id, thread_ts))
        return AssistantThreadContext(context) if context and context.get("channel_id") else None

    def known(self, channel_id: str, thread_ts: str) -> bool:
        return (channel_id, thread_ts) in self._contexts


async def panel_scope(client: AsyncWebClient, context: AsyncBoltContext, dm: str, viewed: str) -> tuple[Scope, str]:
    """(scope to answer from, ``#name`` of the viewed channel or "" for the DM's own documents)."""
    if viewed and not viewed.startswith("D"):
        try:
            info = (await client.conversations_info(channel=viewed)).get("channel") or {}
        except SlackApiError as error:  # private and without the bot: invisible to it
            log.info("panel context %s not readable: %s", viewed, error.response.get("error"))
            info = {}
        if info.get("is_member"):
            return scope_of(context, viewed), f"#{info.get('name') or viewed}"
    return scope_of(context, dm), ""


def register(app: AsyncApp, deps: Deps) -> None:
    threads = PanelThreads()
    assistant = AsyncAssistant(thread_context_store=threads)

    @assistant.thread_started
    async def started(payload: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, say: AsyncSay) -> None:
        thread = payload.get("assistant_thread") or {}
        dm, ts = str(thread.get("channel_id") or ""), str(thread.get("thread_ts") or "")
        viewed = str((thread.get("context") or {}).get("channel_id") or "")
        await threads.save(channel_id=dm, thread_ts=ts, context=thread.get("context") or {})
        async with never_silent(deps, lambda text: say(text), "assistant_thread_started"):
            scope, where = await panel_scope(client, context, dm, viewed)
            docs = await deps.capacity.questions.run(deps.citebot.documents, scope)
            await say(messages.panel_greeting(where, len(docs)))
            if prompts := messages.panel_prompts(docs):
                await client.assistant_threads_setSuggestedPrompts(
                    channel_id=dm, thread_ts=ts, prompts=prompts, title=messages.PANEL_PROMPTS_TITLE
                )

    @assistant.thread_context_changed
    async def context_changed(payload: dict[str, Any]) -> None:
        thread = payload.get("assistant_thread") or {}
        await threads.save(
            channel_id=str(thread.get("channel_id") or ""),
            thread_ts=str(thread.get("thread_ts") or ""),
            context=thread.get("context") or {},
        )

    def in_panel(body: dict[str, Any]) -> bool:  # (bolt calls an assistant matcher without awaiting)
        """A question in a panel thread (files go on to the files listener)."""
        event = body.get("event") or {}
        return not event.get("files") and threads.known(str(event.get("channel")), str(event.get("thread_ts")))

    @assistant.user_message(matchers=[in_panel])
    async def asked(payload: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        message = Incoming.parse(payload, context)

        async def report(text: str) -> None:
            await client.chat_postMessage(channel=message.channel, thread_ts=message.reply_thread, text=text)

        async with never_silent(deps, report, f"panel question {message.channel}/{message.ts}"):
            if not message.text or not await deps.claims.first(message.claim_key):
                return
            saved = threads._contexts.get(message.thread_key) or {}  # noqa: SLF001 (our own store)
            scope, _ = await panel_scope(client, context, message.channel, str(saved.get("channel_id") or ""))
            thread_ts = message.reply_thread
            await client.assistant_threads_setTitle(
                channel_id=message.channel, thread_ts=thread_ts, title=messages.truncate(message.text, 80)
            )
            await client.assistant_threads_setStatus(
                channel_id=message.channel, thread_ts=thread_ts, status=messages.PANEL_STATUS
            )
            thread = await read_thread_of(client, message)
            history = history_before(thread, message)
            await answer_in_thread(
                deps,
                client,
                scope=scope,
                channel=message.channel,
                thread_ts=thread_ts,
                options=AskOptions(question=message.text),
                history=history,
                user=message.user,
            )

    app.assistant(assistant)
