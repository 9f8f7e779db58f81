"""Run the bot: Socket Mode when ``SLACK_APP_TOKEN`` is set, HTTP mode (``POST /slack/events``)
otherwise; ``GET /healthz`` in both. ``serve`` is what ``citebot serve`` calls."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app, make_client
from bot.deps import Deps
from citebot import logs
from citebot.errors import CitebotError
from citebot.settings import Settings
from dataflows.app import Citebot

log = logging.getLogger("citebot.bot")
EVENTS_PATH = "/slack/events"


def check_tokens(settings: Settings) -> None:
    """Raise ``CitebotError`` (one line) when the Slack credentials cannot work."""
    if not settings.slack_bot_token:
        raise CitebotError(
            "SLACK_BOT_TOKEN is not set: use the Bot User OAuth Token (xoxb-…) from your Slack app's "
            "OAuth & Permissions page."
        )
    problems = settings.slack_credential_problems()
    if problems:
        raise CitebotError(f"{problems[0]}.")


async def check_with_slack(settings: Settings) -> None:
    """Ask Slack whether the tokens are accepted (auth.test; apps.connections.open in Socket Mode)."""
    client = make_client(settings)
    checks = [("SLACK_BOT_TOKEN", client.auth_test)]
    if settings.slack_app_token:
        checks.append(("SLACK_APP_TOKEN", lambda: client.apps_connections_open(app_token=settings.slack_app_token)))
    try:
        for name, call in checks:
            try:
                await call()
            except SlackApiError as error:
                raise CitebotError(f"Slack rejected {name} ({error.response.get('error')}).") from None
            except Exception as error:
                raise CitebotError(
                    f"Cannot reach Slack at {settings.slack_api_url} ({type(error).__name__}: {error})."
                ) from None
    finally:
        if client.session is not None:
            await client.session.close()


class BotServer:
    """The bot on an event loop: Socket Mode or HTTP listener, plus ``/healthz``.

    ``port=0`` binds a free port (see ``.port`` after ``start``).
    """

    def __init__(
        self,
        settings: Settings,
        citebot: Citebot,
        *,
        host: str = "0.0.0.0",
        port: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings, self.citebot, self.host = settings, citebot, host
        self.port = settings.http_port if port is None else port
        self.clock = clock
        self.socket_mode = settings.slack_mode == "socket"
        self.app: AsyncApp | None = None
        self.deps: Deps | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.app, self.deps = build_app(self.settings, self.citebot, clock=self.clock)
        web_app = web.Application()
        web_app.router.add_get("/healthz", self._healthz)
        if not self.socket_mode:
            web_app.router.add_post(EVENTS_PATH, self._events)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        if self.socket_mode:
            self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
            await self._socket.connect_async()
        log.info("citebot is running (%s mode, health on :%d/healthz)", "Socket" if self.socket_mode else "HTTP", self.port)

    async def _events(self, request: web.Request) -> web.Response:
        assert self.app is not None
        return await to_aiohttp_response(await self.app.async_dispatch(await to_bolt_request(request)))

    async def _healthz(self, _: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "ok": True,
            "mode": "socket" if self.socket_mode else "http",
            "in_flight": len(self.deps.inflight) if self.deps else 0,
        }
        if self.deps is not None:
            queue = self.deps.capacity.ingest_queue
            body["indexing"] = {"running": queue.slots - queue.free_slots, "waiting": queue.waiting_count}
        if self._socket is not None:
            body["connected"] = await self._socket.client.is_connected()
            body["ok"] = body["connected"]
        return web.json_response(body, status=200 if body["ok"] else 503)

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop taking new work, let running work finish (up to ``grace_s``), then close."""
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self.deps is not None and self.deps.inflight:
            await asyncio.wait(set(self.deps.inflight), timeout=grace_s)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.deps is not None:
            self.deps.capacity.close()
        if self.app is not None:
            client: AsyncWebClient = self.app.client
            if client.session is not None:
                await client.session.close()


async def _serve(settings: Settings) -> None:
    await check_with_slack(settings)
    citebot = await asyncio.to_thread(Citebot, settings)
    server = BotServer(settings, citebot)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.stop()
        await asyncio.to_thread(citebot.close)


EVENT_LOOP_SWITCH_INTERVAL_S = 0.001


def serve(settings: Settings) -> None:
    """Run the Slack bot until SIGINT/SIGTERM. Bad or missing Slack credentials raise ``CitebotError``."""
    check_tokens(settings)
    logs.configure(settings.log_level)  # replaces the CLI's WARNING: the bot logs at CITEBOT_LOG_LEVEL
    # Answers are ranked in Python on question threads; the event loop (acks) must get the GIL
    # back quickly from them: 1 ms instead of CPython's 5 ms between forced switches.
    sys.setswitchinterval(EVENT_LOOP_SWITCH_INTERVAL_S)
    asyncio.run(_serve(settings))
