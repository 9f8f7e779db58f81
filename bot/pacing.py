"""Slack's rate limits, respected before Slack has to enforce them.

* ``chat.update`` is Tier 3: about 50 calls a minute per workspace, shared by every answer being
  streamed. Partial (streaming) updates take a token from a per-workspace ``PartialBudget`` of
  ``PARTIALS_PER_MINUTE`` (the rest of the tier stays free for final answers and status edits); no
  token, or Slack said 429 less than Retry-After ago: the partial is skipped, never queued, so the
  final answer is never delayed by it.
* ``chat.postMessage`` allows about one message per second per channel: a burst of the bot's own
  posts into one channel (one reply per arXiv paper, overflow sources) waits ``POST_INTERVAL_S``
  between posts (``ChannelPacer``).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

PARTIALS_PER_MINUTE = 20  # of chat.update's Tier 3 (~50/min/workspace)
POST_INTERVAL_S = 1.0  # chat.postMessage: ~1 per second per channel


class PartialBudget:
    """Streaming updates allowed per workspace: a token bucket plus Retry-After backoff."""

    def __init__(self, per_minute: float = PARTIALS_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self._tokens: dict[str, float] = defaultdict(lambda: min(3.0, per_minute))
        self._at: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}

    def take(self, workspace: str) -> bool:
        """True (and one token spent) when a partial update may be sent now."""
        now = time.monotonic()
        if now < self._blocked_until.get(workspace, 0.0):
            return False
        burst = min(3.0, self.per_minute)
        tokens = min(burst, self._tokens[workspace] + (now - self._at.get(workspace, now)) * self.per_minute / 60)
        self._at[workspace] = now
        if tokens < 1:
            self._tokens[workspace] = tokens
            return False
        self._tokens[workspace] = tokens - 1
        return True

    def rate_limited(self, workspace: str, retry_after_s: float) -> None:
        """Slack answered 429: no partials in this workspace until Retry-After has passed."""
        self._blocked_until[workspace] = time.monotonic() + max(retry_after_s, 1.0)


class ChannelPacer:
    """At most one of the bot's own posts per ``interval_s`` per channel (from this process)."""

    def __init__(self, interval_s: float = POST_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._next: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def wait(self, channel: str) -> None:
        async with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(channel, 0.0))
            self._next[channel] = at + self.interval_s
        if at > now:
            await asyncio.sleep(at - now)
