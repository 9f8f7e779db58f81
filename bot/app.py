"""Build the bolt ``AsyncApp``: one ``AsyncWebClient`` (configurable base URL, retry handlers),
HTTP-mode signature checks, bot filtering, and every feature's listeners."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import Clock
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Capacity, Deps
from bot.listeners import register_all
from bot.middleware import Claims, IgnoreBots, SignatureCheck
from citebot.settings import Settings
from dataflows.app import Citebot


def make_client(settings: Settings, *, wait_on_429: bool = True) -> AsyncWebClient:
    """A Web API client that retries dropped connections and (``wait_on_429``) honours Retry-After
    on 429. Without it a 429 raises at once (streaming partials, which are skipped instead)."""
    handlers: list[Any] = [AsyncConnectionErrorRetryHandler(max_retry_count=2)]
    if wait_on_429:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=30 if wait_on_429 else 10,
        retry_handlers=handlers,
    )


def build_app(settings: Settings, citebot: Citebot, *, clock: Clock | None = None) -> tuple[AsyncApp, Deps]:
    """The bot's app. ``clock`` overrides the signature check's clock (tests replaying old vectors)."""
    socket_mode = settings.slack_mode == "socket"
    app = AsyncApp(
        name="citebot",
        client=make_client(settings),
        logger=logging.getLogger("citebot.bolt"),
        # Our SignatureCheck runs first (before auth.test), so a forged request does nothing at all.
        request_verification_enabled=False,
        before_authorize=None if socket_mode else SignatureCheck(settings.slack_signing_secret, clock),
        signing_secret=settings.slack_signing_secret or None,
        process_before_response=False,  # ack first, work afterwards
    )
    app.use(IgnoreBots())
    capacity = Capacity.from_settings(settings)
    deps = Deps(
        settings=settings,
        citebot=citebot,
        claims=Claims(citebot.claim_event, capacity.events),
        partial_client=make_client(settings, wait_on_429=False),
        capacity=capacity,
    )
    register_all(app, deps)
    return app, deps
