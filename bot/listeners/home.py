"""The App Home tab: per channel the user shares with the bot, its documents a page at a time
(``Citebot.documents``), "Add an arXiv paper" (a modal → ``Citebot.ingest_arxiv``) and "Forget" on
the documents the user added (Slack's confirmation dialog → ``Citebot.forget``). Published with
``views.publish`` on ``app_home_opened`` and after every change made from it.

Shared channels: the user's conversations (``users.conversations`` with ``user``: public ones,
and private ones only where the bot is too) that are also the bot's own. A click is checked again
on the server: the channel must still be shared and the document the user's own.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import Deps, log
from bot.incoming import scope_of
from bot.queueing import ingest_turn
from citebot.arxiv_ids import MAX_IDS_PER_REQUEST, check_id_count
from citebot.domain import Document, Provenance
from citebot.errors import CitebotError

CONVERSATION_TYPES = "public_channel,private_channel"


async def _conversations(client: AsyncWebClient, **args: Any) -> dict[str, str]:
    """id → name of every conversation ``users.conversations`` lists (all pages)."""
    found: dict[str, str] = {}
    cursor: str | None = None
    while True:
        page = await client.users_conversations(types=CONVERSATION_TYPES, limit=200, cursor=cursor, **args)
        found |= {c["id"]: c.get("name") or c["id"] for c in page.get("channels") or []}
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return found


async def shared_channels(client: AsyncWebClient, user: str) -> dict[str, str]:
    """Channels both ``user`` and the bot are in (id → name)."""
    theirs, ours = await asyncio.gather(_conversations(client, user=user), _conversations(client))
    return {c: name for c, name in theirs.items() if c in ours}


def register(app: AsyncApp, deps: Deps) -> None:
    pages: dict[tuple[str, str], int] = {}  # (user, channel) -> page shown

    async def publish(client: AsyncWebClient, context: AsyncBoltContext, user: str, notice: str = "") -> None:
        channels = await shared_channels(client, user)
        listed: list[tuple[str, str, list[Document]]] = []
        for channel, name in sorted(channels.items(), key=lambda item: item[1])[: messages.HOME_CHANNELS]:
            docs = await deps.capacity.questions.run(deps.citebot.documents, scope_of(context, channel))
            listed.append((channel, name, sorted(docs, key=lambda d: d.added_at, reverse=True)))
        shown = {c: p for (u, c), p in pages.items() if u == user}
        await client.views_publish(user_id=user, view=messages.home_view(user, listed, shown, notice))

    async def guarded(client: AsyncWebClient, context: AsyncBoltContext, user: str, work: Any) -> None:
        """Run ``work()`` (returns the notice to show); any failure is shown on the Home tab."""
        task = asyncio.current_task()
        if task is not None:
            deps.inflight.add(task)
        try:
            try:
                notice = await work()
            except CitebotError as error:
                notice = messages.error_text(str(error))
            except Exception:
                log.exception("App Home action failed")
                notice = messages.GENERIC_ERROR
            await publish(client, context, user, notice)
        except Exception:
            log.exception("publishing the Home tab for %s failed", user)
        finally:
            if task is not None:
                deps.inflight.discard(task)

    @app.event("app_home_opened")
    async def opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        if event.get("tab") != "home":
            return
        user = str(event.get("user") or "")

        async def nothing() -> str:
            return ""

        await guarded(client, context, user, nothing)

    @app.action(re.compile(f"^{messages.HOME_PAGE}_(previous|next)$"))
    async def page(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")

        async def turn() -> str:
            value = json.loads(action.get("value") or "{}")
            pages[(user, str(value.get("c")))] = max(0, int(value.get("p", 0)))
            return ""

        await guarded(client, context, user, turn)

    @app.action(messages.HOME_FORGET)
    async def forget(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")

        async def remove() -> str:
            value = json.loads(action.get("value") or "{}")
            channel, doc_id = str(value.get("c") or ""), str(value.get("d") or "")
            channels = await shared_channels(client, user)
            scope = scope_of(context, channel)
            docs = await deps.capacity.questions.run(deps.citebot.documents, scope) if channel in channels else []
            doc = next((d for d in docs if d.document_id == doc_id), None)
            if doc is None:
                return messages.error_text("That document is no longer in a channel you share with me.")
            if doc.added_by != user:
                return messages.error_text("Only the person who added a document can forget it from here.")
            removed = await deps.capacity.questions.run(deps.citebot.forget, doc_id, scope)
            return messages.forgot_text(removed).replace("this channel", f"#{messages.neutralise(channels[channel])}")

        await guarded(client, context, user, remove)

    @app.action(messages.HOME_ADD)
    async def add(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        channel = str(action.get("value") or "")
        user = str((body.get("user") or {}).get("id") or "")
        name = (await shared_channels(client, user)).get(channel)
        if name is not None:
            await client.views_open(trigger_id=body["trigger_id"], view=messages.arxiv_modal(channel, name))

    @app.view(messages.HOME_ARXIV_MODAL)
    async def submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        typed = view["state"]["values"][messages.HOME_ARXIV_BLOCK][messages.HOME_ARXIV_INPUT].get("value") or ""
        ids = list(dict.fromkeys(t for t in re.split(r"[\s,]+", typed) if t))
        try:
            check_id_count(ids)
        except CitebotError as error:
            await ack(response_action="errors", errors={messages.HOME_ARXIV_BLOCK: str(error)})
            return
        if not ids:
            await ack(
                response_action="errors", errors={messages.HOME_ARXIV_BLOCK: f"Enter 1 to {MAX_IDS_PER_REQUEST} arXiv IDs."}
            )
            return
        await ack()
        user, channel = str(body["user"]["id"]), str(view.get("private_metadata") or "")

        async def ingest() -> str:
            channels = await shared_channels(client, user)
            if channel not in channels:
                return messages.error_text("You no longer share that channel with me.")
            scope = scope_of(context, channel)
            provenance = Provenance(scope=scope, user=user, source="arxiv")
            name = f"arXiv {' '.join(ids)}"  # waits its turn in the channel's ingest queue, as /arxiv does
            async with ingest_turn(deps, client, scope=scope, name=name, user=user, thread_ts=None) as turn:
                if not turn.started:
                    return messages.error_text("The indexing queue is full; try again in a few minutes.")
                outcomes = await deps.capacity.ingest.run(deps.citebot.ingest_arxiv, ids, provenance)
            return "\n".join(messages.arxiv_outcome_text(o) for o in outcomes)

        await guarded(client, context, user, ingest)
