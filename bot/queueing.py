"""Indexing waits its turn in the ingest queue (citebot/capacity.py), visibly.

A share (or ``/arxiv`` request) that cannot start at once says so in its thread ("queued, 3 ahead");
that message is updated when it starts and finally replaced by the result. A full queue refuses
it with a reply instead of growing without bound. Channels take turns, so one busy channel never holds up another.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import Deps, QueuedIngest, log
from citebot.capacity import QueueFull
from citebot.domain import Scope


@dataclass
class Turn:
    """An item's turn in the ingest queue. ``started`` is False when the queue refused it (the
    user has been told). ``say`` replies in the item's thread: when a queue note was posted, the
    reply replaces it, so a queued share ends with one reply in its thread, as an unqueued one."""

    client: AsyncWebClient
    channel: str
    thread_ts: str | None
    started: bool = False
    note_ts: str | None = None

    async def say(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        if self.note_ts:
            await self.client.chat_update(channel=self.channel, ts=self.note_ts, text=text, blocks=blocks or [])
        else:
            await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=text, blocks=blocks)


@asynccontextmanager
async def ingest_turn(
    deps: Deps,
    client: AsyncWebClient,
    *,
    scope: Scope,
    name: str,
    user: str,
    thread_ts: str | None,
) -> AsyncIterator[Turn]:
    """Waits for this item's turn to be indexed (the slot is held until exit); a full queue
    refuses it at once with a reply (``turn.started`` is False)."""
    channel = scope.channel
    turn = Turn(client, channel, thread_ts)
    try:
        ticket = deps.capacity.ingest_queue.enter(scope.key, QueuedIngest(name=name, user=user))
    except QueueFull as full:
        await turn.say(messages.queue_full_text(name, full.limit, per_channel=full.per_lane))
        yield turn
        return
    try:
        if ticket.state == "waiting":
            ahead = ticket.ahead
            await deps.pacer.wait(channel)  # a burst of shares: ~1 note a second, as Slack asks
            turn.note_ts = await _post(client, channel, thread_ts, messages.queued_text(name, ahead))
            await ticket.wait()
            if turn.note_ts:
                waited = time.monotonic() - ticket.entered_at
                await _update(client, channel, turn.note_ts, messages.started_text(name, waited))
        turn.started = True
        yield turn
    finally:
        ticket.release()


def queue_entries(deps: Deps, scope: Scope) -> list[tuple[str, str, int | None, float]]:
    """What ``/docs`` shows about the channel's queue: (name, user, ahead or None when running, seconds)."""
    queue, now = deps.capacity.ingest_queue, time.monotonic()
    return [
        (
            t.item.name,
            t.item.user,
            None if t.started_at is not None else queue.ahead_of(t),
            now - (t.started_at or t.entered_at),
        )
        for t in queue.lane(scope.key)
    ]


async def _post(client: AsyncWebClient, channel: str, thread_ts: str | None, text: str) -> str | None:
    """Queue notes are a courtesy: a failure to post or update one never stops the indexing."""
    try:
        return str((await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text))["ts"])
    except SlackApiError as error:
        log.warning("queue note in %s: %s", channel, error.response.get("error"))
        return None


async def _update(client: AsyncWebClient, channel: str, ts: str, text: str) -> None:
    try:
        await client.chat_update(channel=channel, ts=ts, text=text)
    except SlackApiError as error:
        log.warning("queue note update in %s: %s", channel, error.response.get("error"))
