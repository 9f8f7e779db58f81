"""What every listener needs: the Citebot facade, settings, claims, and the scope of a request."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

from bot.middleware import Claims
from citebot.domain import Scope
from citebot.settings import Settings
from dataflows.app import Citebot

log = logging.getLogger("citebot.bot")


@dataclass
class Deps:
    settings: Settings
    citebot: Citebot
    claims: Claims
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)
    answered_threads: set[tuple[str, str]] = field(default_factory=set)
    # file_shared waits this long so the message/file_share event (which knows the thread) wins.
    file_shared_grace_s: float = 2.0
    stream_interval_s: float = 1.0


def scope_for(context: AsyncBoltContext, channel: str) -> Scope:
    """(team, channel) of the request. The team is the installation's (auth.test), so a channel
    shared with another organisation is one scope whoever speaks in it; a DM is its own channel."""
    authorized = context.authorize_result
    team = (authorized.team_id if authorized is not None else None) or context.team_id or ""
    return Scope(workspace=team, channel=channel)
