"""What every listener needs: the Citebot facade, settings, claims, and the bot's bounded memory."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.middleware import Claims, Recent
from bot.pacing import ChannelPacer, PartialBudget
from citebot.settings import Settings
from dataflows.app import Citebot

log = logging.getLogger("citebot.bot")

THREADS_REMEMBERED = 10_000
UNRELATED_THREAD_TTL_S = 600.0  # another replica may answer in a thread meanwhile


@dataclass
class Deps:
    settings: Settings
    citebot: Citebot
    claims: Claims
    partial_client: AsyncWebClient  # streaming updates: no waiting on 429, the partial is skipped
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
