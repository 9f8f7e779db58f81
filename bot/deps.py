"""What every listener needs: the Citebot facade, settings, claims, the capacity for each kind of
work, and the bot's bounded memory."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.middleware import Claims, Recent
from bot.pacing import ChannelPacer, PartialBudget
from citebot.capacity import FairQueue, Pool
from citebot.settings import Settings
from dataflows.app import Citebot

log = logging.getLogger("citebot.bot")

THREADS_REMEMBERED = 10_000
UNRELATED_THREAD_TTL_S = 600.0  # another replica may answer in a thread meanwhile


# Indexing threads (and the PDF parsing processes they start) run at this lower CPU priority, so
# on a busy machine questions get the cores first (bench/isolation.py measures the difference).
INGEST_NICENESS = 10


@dataclass(frozen=True)
class QueuedIngest:
    """What the ingest queue shows about one waiting or running item (``/docs``)."""

    name: str
    user: str


@dataclass
class Capacity:
    """Separate capacity per kind of work (see citebot/capacity.py): questions and event claims
    have their own threads, so they never wait behind indexing; indexing runs only when the
    ingest queue gives it a turn (one turn = one thread of ``ingest``, so that pool never queues).
    """

    questions: Pool
    events: Pool
    ingest: Pool
    ingest_queue: FairQueue[QueuedIngest]

    @classmethod
    def from_settings(cls, s: Settings) -> Capacity:
        return cls(
            questions=Pool("questions", s.question_threads),
            events=Pool("events", s.event_threads),
            ingest=Pool("ingest", s.ingest_concurrency, niceness=INGEST_NICENESS),
            ingest_queue=FairQueue(s.ingest_concurrency, s.ingest_queue, s.ingest_queue_per_channel),
        )

    def close(self) -> None:
        for pool in (self.questions, self.events, self.ingest):
            pool.close()


@dataclass
class Deps:
    settings: Settings
    citebot: Citebot
    claims: Claims
    partial_client: AsyncWebClient  # streaming updates: no waiting on 429, the partial is skipped
    capacity: Capacity
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)
    # (channel, thread_ts) where the bot has answered / that concern someone else (read once)
    answered_threads: Recent = field(default_factory=lambda: Recent(THREADS_REMEMBERED))
    unrelated_threads: Recent = field(default_factory=lambda: Recent(THREADS_REMEMBERED, UNRELATED_THREAD_TTL_S))
    reading: dict[tuple[str, str], asyncio.Future[Any]] = field(default_factory=dict)  # thread reads in flight
    partials: PartialBudget = field(default_factory=PartialBudget)
    pacer: ChannelPacer = field(default_factory=ChannelPacer)
    # file_shared waits this long so the message/file_share event (which knows the thread) wins.
    file_shared_grace_s: float = 2.0
    stream_interval_s: float = 1.0
