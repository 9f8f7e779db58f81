"""Request filters that run before any listener: signatures, other bots, duplicate deliveries."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from logging import Logger

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.middleware.request_verification.async_request_verification import AsyncRequestVerification
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import Clock, SignatureVerifier

from citebot.capacity import Pool

IGNORED_BOT_SUBTYPES = {"bot_message", "bot_add", "bot_remove"}  # legacy bots; app bots carry bot_id


class SignatureCheck(AsyncRequestVerification):
    """Bolt's HTTP-mode signature check (401 on a bad signature or a timestamp older than 5 minutes),
    with an injectable clock so the official signed test vector can be replayed."""

    def __init__(self, signing_secret: str, clock: Clock | None = None, base_logger: Logger | None = None) -> None:
        super().__init__(signing_secret, base_logger=base_logger)
        self._verifier = SignatureVerifier(signing_secret=signing_secret, clock=clock or Clock())


class IgnoreBots(AsyncMiddleware):
    """Acknowledge and drop events written by any bot (bolt already drops the bot's own)."""

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        event = req.body.get("event")
        if isinstance(event, dict) and (event.get("bot_id") or event.get("subtype") in IGNORED_BOT_SUBTYPES):
            return BoltResponse(status=200, body="")
        return await next()


class Recent:
    """A bounded set: remembers the ``size`` newest keys, each for at most ``ttl_s`` seconds."""

    def __init__(self, size: int, ttl_s: float | None = None) -> None:
        self._items: OrderedDict[Hashable, float] = OrderedDict()
        self._size, self._ttl = size, ttl_s

    def add(self, key: Hashable) -> None:
        self._items[key] = time.monotonic()
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        added = self._items.get(key)
        if added is None:
            return False
        if self._ttl is not None and time.monotonic() - added > self._ttl:
            del self._items[key]
            return False
        return True

    def __len__(self) -> int:
        return len(self._items)


class Claims:
    """First-delivery detection: an in-memory fast path in front of ``Citebot.claim_event``.

    The persistent claim (in Weaviate) makes Slack retries, redeliveries after a restart, and
    deliveries to another replica do no second work; the memory answers repeats without a
    round trip and closes the race between two concurrent deliveries in this process.
    """

    def __init__(self, claim: Callable[[str], bool], pool: Pool, remember: int = 20_000) -> None:
        self._claim = claim
        self._pool = pool  # its own threads: a claim never waits behind indexing
        self._seen = Recent(remember)

    async def first(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        try:
            return await self._pool.run(self._claim, key)
        except BaseException:
            self._seen.discard(key)  # let a retry try again
            raise
