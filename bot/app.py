"""Build the bolt ``AsyncApp``: one ``AsyncWebClient`` (configurable base URL, retry handlers),
HTTP-mode signature checks, bot filtering, and every feature's listeners."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import Clock
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.listeners import register_all
from bot.middleware import Claims, IgnoreBots, SignatureCheck
from citebot.settings import Settings
from dataflows.app import Citebot


def make_client(settings: Settings) -> AsyncWebClient:
    """The one Web API client: honours Retry-After on 429 and retries dropped connections."""
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
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
    deps = Deps(settings=settings, citebot=citebot, claims=Claims(citebot.claim_event))
    register_all(app, deps)
    return app, deps
