"""/arxiv ID [ID…] → ``Citebot.ingest_arxiv`` → one reply per paper in the thread of a status message."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import Deps, scope_for
from bot.guard import never_silent, post_or_explain
from citebot.domain import Provenance

MAX_IDS = 10


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/arxiv")
    async def on_arxiv(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()

        async def report(text: str) -> None:
            await respond(text=text, response_type="ephemeral", replace_original=False)

        async with never_silent(deps, report, "/arxiv"):
            ids = list(dict.fromkeys(t for t in re.split(r"[\s,]+", command.get("text") or "") if t))
            if not ids or len(ids) > MAX_IDS:
                await report(messages.ARXIV_USAGE + (f" (at most {MAX_IDS} ids at a time)" if ids else ""))
                return
            if not await deps.claims.first(f"cmd:{command['trigger_id']}"):
                return
            channel, user = command["channel_id"], command["user_id"]
            listed = ", ".join(f"`{messages.neutralise(i)}`" for i in ids)
            status = f":hourglass_flowing_sand: <@{user}> asked me to add {len(ids)} arXiv paper(s): {listed}. Fetching…"
            ts = await post_or_explain(client, respond, channel=channel, text=status)
            if ts is None:
                return
            scope = scope_for(context, channel)

            async def reply(text: str) -> None:
                await client.chat_postMessage(channel=channel, thread_ts=ts, text=text)

            async with never_silent(deps, reply, "/arxiv ingest"):
                outcomes = await asyncio.to_thread(
                    deps.citebot.ingest_arxiv, ids, Provenance(scope=scope, user=user, source="arxiv")
                )
                for outcome in outcomes:
                    text = messages.arxiv_outcome_text(outcome)
                    await client.chat_postMessage(channel=channel, thread_ts=ts, text=text, blocks=[messages.section(text)])
                added = sum(o.result is not None for o in outcomes)
                mark = ":white_check_mark:" if added == len(outcomes) else ":warning:"
                await client.chat_update(
                    channel=channel,
                    ts=ts,
                    text=f"{mark} Added {added} of {len(outcomes)} arXiv paper(s): {listed}. Details in the thread.",
                )
