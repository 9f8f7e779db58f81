"""/arxiv ID [ID…] → ``Citebot.ingest_arxiv`` → one reply per paper (about one a second, as Slack
asks) in the thread of a status message."""

from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp

from bot import messages
from bot.deps import Deps
from bot.guard import never_silent, on_command, post_or_explain
from bot.incoming import Command
from bot.queueing import ingest_turn
from citebot.arxiv_ids import check_id_count
from citebot.domain import Provenance
from citebot.errors import TooManyIds


def register(app: AsyncApp, deps: Deps) -> None:
    @on_command(app, deps, "/arxiv")
    async def on_arxiv(command: Command) -> None:
        ids = list(dict.fromkeys(t for t in re.split(r"[\s,]+", command.text) if t))
        if not ids:
            await command.tell(messages.ARXIV_USAGE)
            return
        try:
            check_id_count(ids)
        except TooManyIds as error:
            await command.tell(f"{error} {messages.ARXIV_USAGE}")
            return
        if not await deps.claims.first(command.claim_key):
            return
        channel, client = command.channel, command.client
        listed = ", ".join(f"`{messages.neutralise(i)}`" for i in ids)
        status = f":hourglass_flowing_sand: <@{command.user}> asked me to add {len(ids)} arXiv paper(s): {listed}. Fetching…"
        ts = await post_or_explain(command, text=status)
        if ts is None:
            return

        async def reply(text: str) -> None:
            await client.chat_postMessage(channel=channel, thread_ts=ts, text=text)

        async with never_silent(deps, reply, "/arxiv ingest"):
            name = f"/arxiv {' '.join(ids)}"
            async with ingest_turn(deps, client, scope=command.scope, name=name, user=command.user, thread_ts=ts) as turn:
                if not turn.started:
                    await client.chat_update(channel=channel, ts=ts, text=f":x: Not added: {listed}. Details in the thread.")
                    return
                outcomes = await deps.capacity.ingest.run(
                    deps.citebot.ingest_arxiv, ids, Provenance(scope=command.scope, user=command.user, source="arxiv")
                )
            for outcome in outcomes:
                text = messages.arxiv_outcome_text(outcome)
                await deps.pacer.wait(channel)
                await client.chat_postMessage(channel=channel, thread_ts=ts, text=text, blocks=[messages.section(text)])
            added = sum(o.result is not None for o in outcomes)
            mark = ":white_check_mark:" if added == len(outcomes) else ":warning:"
            await client.chat_update(
                channel=channel,
                ts=ts,
                text=f"{mark} Added {added} of {len(outcomes)} arXiv paper(s): {listed}. Details in the thread.",
            )
