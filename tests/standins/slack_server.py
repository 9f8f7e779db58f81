"""A stand-in Slack on 127.0.0.1 that speaks the real protocols the bot uses.

* Web API (``<url>/api/<method>``): real response shapes (``ok``, ``ts``, ``channel``, ``message``,
  ``error``), bearer-token checks (``invalid_auth`` / ``not_authed``), channel membership
  (``not_in_channel``), and Slack's message limits so a message real Slack would reject is rejected
  here too: every block is parsed and validated with ``slack_sdk.models.blocks`` (``invalid_blocks``),
  at most 50 blocks, and a total block text cap (``msg_blocks_too_long``).
* Scopes: the granted scopes are read from ``manifest.yaml``; a method (or a conversation type)
  the manifest does not grant answers ``missing_scope`` with ``needed``/``provided``.
* Rate limits: Slack's per-method tiers (Tier 1: 1/min, 2: 20/min, 3: 50/min, 4: 100/min per
  workspace, as token buckets with the minute's budget as burst) and chat.postMessage's ~1/s per
  channel; over budget: HTTP 429 ``ratelimited`` with ``Retry-After``. Tests lower (or lift) a
  budget with ``limit(method, per_minute, burst)``.
* Pagination: ``limit``/``cursor`` on conversations.replies (oldest first) and .history (newest first).
* Bot messages have Slack's real shape (``bot_id`` + ``user`` + ``bot_profile``, no subtype).
* File downloads (``/files-pri/<team>-<file>/download/<name>``) behind the bot token; a wrong or
  missing token gets a 200 HTML login page, as real Slack answers.
* Socket Mode: ``apps.connections.open`` returns a ``ws://`` URL; the socket sends ``hello`` and
  delivers envelopes (``events_api``, ``slash_commands``, ``interactive``); acks are recorded.
* response_url hooks (``/hooks/commands/...``): what ``respond()`` posts is recorded.
* HTTP mode: ``deliver_http`` signs a request with the signing secret and posts it to the bot.
* Fault injection: ``faults.append(Fault(status=429, retry_after=1, path="chat.postMessage"))``.

Everything a user would see is queryable: ``thread(channel, ts)``, ``channel_messages(channel)``,
``responses`` (ephemeral / response_url), ``reactions``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from aiohttp import WSMsgType, web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from .background import BackgroundServer, Fault, FaultQueue, Recorded, recording_middleware

LOGIN_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><meta charset="utf-8"><title>Slack</title></head>'
    '<body><div id="page"><h1>Sign in to your workspace</h1>'
    '<form action="/signin" method="post"><input type="email" name="email"></form></div></body></html>'
)


MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yaml"
ChannelKind = Literal["public", "private", "im", "mpim"]

# Slack's documented tiers (requests per minute per workspace per method).
TIERS = {1: 1, 2: 20, 3: 50, 4: 100}
# (apps.connections.open, Tier 1, is not limited here: every Socket Mode test would wait a minute.)
METHOD_TIERS = {
    "auth.test": 4,  # "special": hundreds per minute
    "chat.postEphemeral": 4,
    "chat.update": 3,
    "chat.delete": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.info": 3,
    "files.info": 4,
    "reactions.add": 3,
    "reactions.remove": 2,
    "chat.startStream": 2,
    "chat.appendStream": 4,
    "chat.stopStream": 2,
    "assistant.threads.setStatus": 4,
    "assistant.threads.setSuggestedPrompts": 4,
    "assistant.threads.setTitle": 4,
    "users.conversations": 3,
    "views.publish": 4,
    "views.open": 4,
    "chat.unfurl": 3,
    "users.info": 4,
}
POST_PER_CHANNEL_PER_S, POST_CHANNEL_BURST = 1.0, 10  # chat.postMessage: ~1/s per channel, short bursts
POST_PER_WORKSPACE_PER_MIN = 300  # "several hundred per minute"
MAX_BLOCK_TEXT = 12_000  # total block text above which Slack answers msg_blocks_too_long (~12-13k)
MAX_MARKDOWN_TEXT = 12_000  # chat.*Stream: markdown_text per call
TASK_STATUSES = ("pending", "in_progress", "complete", "error")

# Scopes a method needs; per conversation kind for the conversation methods.
METHOD_SCOPES: dict[str, str | dict[str, str]] = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "assistant.threads.setStatus": "assistant:write",
    "assistant.threads.setSuggestedPrompts": "assistant:write",
    "assistant.threads.setTitle": "assistant:write",
    # users.conversations: per requested type (checked in the method)
    "chat.unfurl": "links:write",
    "files.info": "files:read",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "users.info": "users:read",
    "conversations.replies": {
        "public": "channels:history",
        "private": "groups:history",
        "im": "im:history",
        "mpim": "mpim:history",
    },
    "conversations.history": {
        "public": "channels:history",
        "private": "groups:history",
        "im": "im:history",
        "mpim": "mpim:history",
    },
    "conversations.info": {"public": "channels:read", "private": "groups:read", "im": "im:read", "mpim": "mpim:read"},
}


# Scopes an event needs besides its subscription.
EVENT_SCOPES = {
    "assistant_thread_started": "assistant:write",
    "assistant_thread_context_changed": "assistant:write",
    "link_shared": "links:read",
}


def manifest_scopes(path: Path = MANIFEST) -> frozenset[str]:
    """The bot scopes ``manifest.yaml`` grants (what an installed app's token has)."""
    manifest = yaml.safe_load(path.read_text())
    return frozenset(manifest["oauth_config"]["scopes"]["bot"])


@dataclass
class Bucket:
    """A token bucket: ``burst`` requests at once, refilled at ``per_minute``."""

    per_minute: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> float:
        """0 when a request may go now (and spend a token), else the seconds until it may."""
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_minute / 60)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) * 60 / self.per_minute


@dataclass
class Channel:
    id: str
    name: str
    member: bool = True  # is the bot in it?
    kind: ChannelKind = "public"
    users: set[str] = field(default_factory=set)  # people in it (users.conversations)

    @property
    def is_im(self) -> bool:
        return self.kind == "im"

    @property
    def is_private(self) -> bool:
        return self.kind in ("private", "mpim")

    @property
    def channel_type(self) -> str:
        """The ``channel_type`` of message events."""
        return {"public": "channel", "private": "group", "im": "im", "mpim": "mpim"}[self.kind]


@dataclass
class StoredFile:
    meta: dict[str, Any]
    content: bytes
    always_html: bool = False  # simulate a file the token cannot reach (login page)


@dataclass
class ApiCall:
    method: str
    args: dict[str, Any]
    response: dict[str, Any]


@dataclass
class Ack:
    envelope_id: str
    at: float
    payload: dict[str, Any] | None


@dataclass
class SlackState:
    team_id: str
    bot_user_id: str
    bot_id: str
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    reactions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # (DM channel, thread_ts) of an assistant (AI app panel) thread -> status, title, prompts
    assistant_threads: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _error_renderer(fault: Fault, request: web.Request) -> web.StreamResponse:
    error = fault.message or ("ratelimited" if fault.status == 429 else "internal_error")
    return web.json_response({"ok": False, "error": error}, status=fault.status or 500, headers=fault.headers())


def _section_texts(block: dict[str, Any]) -> list[str]:
    texts = []
    if isinstance(block.get("text"), dict):
        texts.append(block["text"].get("text", ""))
    for f in block.get("fields") or []:
        texts.append(f.get("text", ""))
    return texts


def _block_text(block: dict[str, Any]) -> int:
    """Characters of text a block carries (section text and fields, context and button texts)."""
    total = sum(len(t) for t in _section_texts(block))
    for element in block.get("elements") or []:
        if isinstance(element, dict):
            text = element.get("text")
            total += len(text.get("text", "")) if isinstance(text, dict) else len(str(text or ""))
    return total


def blocks_error(blocks: Any, max_text: int = MAX_BLOCK_TEXT) -> str | None:
    """What real Slack says about ``blocks`` (None: acceptable): each block must parse and validate
    with slack_sdk's Block Kit models, ≤ 50 blocks, button values ≤ 2000 characters, and the total
    block text within ``MAX_BLOCK_TEXT``."""
    if blocks is None:
        return None
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks_format"
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return "invalid_blocks"
        try:
            parsed = Block.parse(block)
            if parsed is None:
                return "invalid_blocks"
            parsed.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, ValueError):
            return "invalid_blocks"
        if block["type"] == "actions":
            for element in block.get("elements", []):
                if len(str(element.get("value", ""))) > 2000:
                    return "invalid_blocks"
        if block["type"] == "context_actions":  # feedback_buttons: value ≤ 2000, text ≤ 75 characters
            for element in block.get("elements", []):
                for button in (element.get("positive_button"), element.get("negative_button")):
                    if button is not None and (
                        len(str(button.get("value", ""))) > 2000 or len((button.get("text") or {}).get("text", "")) > 75
                    ):
                        return "invalid_blocks"
    if sum(_block_text(b) for b in blocks) > max_text:
        return "msg_blocks_too_long"
    return None


class SlackStandIn:
    """The stand-in server plus helpers to play Slack's part in a test."""

    def __init__(
        self,
        *,
        team_id: str = "T111",
        bot_token: str = "xoxb-111-222-standin",
        app_token: str = "xapp-1-A111-standin",
        signing_secret: str = "8f742231b10e8888abcd99yyyzzz85a5",
        bot_user_id: str = "UBOT111",
        bot_id: str = "BBOT111",
        app_id: str = "A111",
        scopes: frozenset[str] | None = None,
    ) -> None:
        self.bot_token, self.app_token, self.signing_secret, self.app_id = bot_token, app_token, signing_secret, app_id
        self.state = SlackState(team_id=team_id, bot_user_id=bot_user_id, bot_id=bot_id)
        self.scopes = manifest_scopes() if scopes is None else scopes
        self.max_block_text = MAX_BLOCK_TEXT  # lower it to make Slack refuse what the bot thinks fits
        # Set to an error (e.g. "not_allowed_token_type") to make chat.startStream refuse, as for
        # a workspace or app where streaming is not available.
        self.streaming_refused: str | None = None
        self.home_views: dict[str, list[dict[str, Any]]] = {}  # user -> every Home tab published
        self.modals: list[dict[str, Any]] = []  # views.open
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._limits: dict[str, tuple[float, float]] = {}  # method -> (per_minute, burst) overrides
        self.faults = FaultQueue()
        self.requests: list[Recorded] = []
        self.api_calls: list[ApiCall] = []
        self.responses: list[dict[str, Any]] = []  # posted to response_url or chat.postEphemeral
        self.acks: dict[str, Ack] = {}
        self.users: dict[str, dict[str, Any]] = {}  # user id -> users.info fields set by add_user
        self._response_urls: dict[str, tuple[str, str]] = {}  # response_url path -> (user, channel)
        self.sent: dict[str, float] = {}  # envelope_id -> when sent
        self._lock = threading.RLock()
        self._ts = itertools.count(1)
        self._last_us = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.server = BackgroundServer(self._build_app())

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        if self._loop is not None:
            for ws in list(self._sockets):
                asyncio.run_coroutine_threadsafe(ws.close(), self._loop).result(timeout=5)
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[recording_middleware(self.requests, self.faults, _error_renderer)])
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{key}/download/{name}", self._download)
        app.router.add_get("/files-pri/{key}/{name}", self._download)
        app.router.add_post("/hooks/commands/{rest:.*}", self._response_url)
        app.router.add_post("/hooks/actions/{rest:.*}", self._response_url)
        app.router.add_get("/link/", self._socket)

        async def remember_loop(_: web.Application) -> None:
            self._loop = asyncio.get_running_loop()

        app.on_startup.append(remember_loop)
        return app

    # --- rate limits -------------------------------------------------------------------------
    def limit(self, method: str, per_minute: float, burst: float | None = None) -> None:
        """Override a method's budget (``chat.postMessage``: per channel). Lower it to provoke 429s,
        raise it where a test measures the bot's own concurrency rather than Slack's limits."""
        with self._lock:
            self._limits[method] = (per_minute, per_minute if burst is None else burst)
            self._buckets = {k: v for k, v in self._buckets.items() if k[0] != method}

    def reset_limits(self) -> None:
        with self._lock:
            self._limits.clear()
            self._buckets.clear()

    def _bucket(self, method: str, key: str, per_minute: float, burst: float) -> Bucket:
        per_minute, burst = self._limits.get(method, (per_minute, burst))
        return self._buckets.setdefault((method, key), Bucket(per_minute, burst))

    def _retry_after(self, method: str, args: dict[str, Any]) -> float:
        """0 when the call is within Slack's budget (and spends it), else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            if method == "chat.postMessage":
                channel = str(args.get("channel", ""))
                per_channel = self._bucket(method, channel, POST_PER_CHANNEL_PER_S * 60, POST_CHANNEL_BURST)
                workspace = self._bucket(method + "#workspace", "", POST_PER_WORKSPACE_PER_MIN, POST_PER_WORKSPACE_PER_MIN)
                wait = per_channel.take(now)
                if wait:
                    return wait
                wait = workspace.take(now)
                if wait:
                    per_channel.tokens += 1  # not spent after all
                return wait
            tier = METHOD_TIERS.get(method)
            if tier is None:
                return 0.0
            return self._bucket(method, "", TIERS[tier], TIERS[tier]).take(now)

    def _scope_error(self, method: str, args: dict[str, Any]) -> dict[str, Any] | None:
        needed = METHOD_SCOPES.get(method)
        if isinstance(needed, dict):
            channel = self.state.channels.get(str(args.get("channel", "")))
            if channel is None:
                return None  # channel_not_found comes from the method
            needed = needed[channel.kind]
        if needed is None or needed in self.scopes:
            return None
        return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(sorted(self.scopes))}

    # --- workspace setup -------------------------------------------------------------------
    def add_channel(
        self, channel_id: str, name: str = "", *, member: bool = True, kind: ChannelKind | None = None
    ) -> Channel:
        """A conversation; its kind follows the id (D: DM, G: private) unless given (``mpim``)."""
        if kind is None:
            kind = "im" if channel_id.startswith("D") else "private" if channel_id.startswith("G") else "public"
        channel = Channel(id=channel_id, name=name or channel_id.lower(), member=member, kind=kind)
        with self._lock:
            self.state.channels[channel_id] = channel
            self.state.messages.setdefault(channel_id, [])
        return channel

    def next_ts(self) -> str:
        """A fresh message ts ("seconds.micros", increasing, unique across stand-in instances)."""
        with self._lock:
            self._last_us = max(int(time.time() * 1_000_000), self._last_us + 1)
            return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def add_file(
        self,
        content: bytes,
        name: str,
        *,
        user: str = "U111",
        filetype: str = "",
        mimetype: str = "",
        title: str | None = None,
        always_html: bool = False,
        file_id: str | None = None,
        external: bool = False,
    ) -> dict[str, Any]:
        """Store an uploaded file; return the Slack file object (as in events and files.info).

        ``external``: a Google Drive file (``is_external``, ``mode: external``, no download URL)."""
        file_id = file_id or "F" + uuid.uuid4().hex[:10].upper()
        team = self.state.team_id
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
        meta = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": title if title is not None else name,
            "mimetype": mimetype
            or {"pdf": "application/pdf", "png": "image/png", "txt": "text/plain"}.get(ext, "application/octet-stream"),
            "filetype": filetype or ext,
            "pretty_type": (filetype or ext).upper(),
            "user": user,
            "editable": False,
            "size": len(content),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{self.url}/files-pri/{team}-{file_id}/{name}",
            "url_private_download": f"{self.url}/files-pri/{team}-{file_id}/download/{name}",
            "permalink": f"https://standin.slack.com/files/{user}/{file_id}/{name}",
            "permalink_public": f"https://slack-files.com/{team}-{file_id}-0a1b2c3d4e",
            "has_rich_preview": False,
            "channels": [],
            "groups": [],
            "ims": [],
            "shares": {},
        }
        if external:
            meta |= {
                "mode": "external",
                "is_external": True,
                "external_type": "gdrive",
                "external_id": "1aBcD" + file_id,
                "external_url": f"https://drive.google.com/file/d/1aBcD{file_id}/view",
                "url_private": f"https://drive.google.com/file/d/1aBcD{file_id}/view",
            }
            meta.pop("url_private_download")
        with self._lock:
            self.state.files[file_id] = StoredFile(meta, content, always_html)
        return dict(meta)

    def delete_file(self, file_id: str) -> None:
        """The uploader deleted the file: files.info answers ``file_not_found`` from now on."""
        with self._lock:
            self.state.files.pop(file_id, None)

    # --- what a user does (stored so conversations.replies sees it) ------------------------
    def user_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        ts = self.next_ts()
        message: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts, "team": self.state.team_id}
        if thread_ts:
            with self._lock:
                parent = self._find(channel, thread_ts) or {}
            message["thread_ts"] = thread_ts
            message["parent_user_id"] = parent.get("user", "")
        if files:
            message["files"] = files
            message["upload"] = False
            message["subtype"] = "file_share"
            with self._lock:
                for f in files:
                    stored = self.state.files[f["id"]]
                    channel_obj = self.state.channels[channel]
                    kind = "public" if channel_obj.kind == "public" else "private"
                    share = {
                        "ts": ts,
                        "channel_name": channel_obj.name,
                        "team_id": self.state.team_id,
                        "reply_count": 0,
                        "reply_users": [],
                        "reply_users_count": 0,
                    }
                    if thread_ts:
                        share["thread_ts"] = thread_ts
                    stored.meta["shares"].setdefault(kind, {}).setdefault(channel, []).insert(0, share)  # newest first
                    listed = {"public": "channels", "private": "groups", "im": "ims", "mpim": "groups"}[channel_obj.kind]
                    if channel not in stored.meta[listed]:
                        stored.meta[listed].append(channel)
        self._store(channel, message)
        return message

    # --- queries ---------------------------------------------------------------------------
    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages (what the channel shows), oldest first."""
        with self._lock:
            return [dict(m) for m in self.state.messages.get(channel, []) if m.get("thread_ts") in (None, m["ts"])]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies in the thread under ``ts`` (without the parent), oldest first."""
        with self._lock:
            return [dict(m) for m in self.state.messages.get(channel, []) if m.get("thread_ts") == ts and m["ts"] != ts]

    def bot_messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            channels = [channel] if channel else list(self.state.messages)
            return [
                dict(m) | {"channel": c}
                for c in channels
                for m in self.state.messages.get(c, [])
                if m.get("bot_id") == self.state.bot_id
            ]

    def reactions_on(self, channel: str, ts: str) -> list[str]:
        with self._lock:
            return list(self.state.reactions.get((channel, ts), []))

    def calls(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.api_calls if c.method == method]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05) -> Any:
        """Poll ``predicate`` until it returns something truthy; return it (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
            time.sleep(interval)

    # --- Web API ---------------------------------------------------------------------------
    def _store(self, channel: str, message: dict[str, Any]) -> None:
        with self._lock:
            self.state.messages.setdefault(channel, []).append(message)

    def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        for m in self.state.messages.get(channel, []):
            if m["ts"] == ts:
                return m
        return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.body_exists:  # (already read by the recording middleware; aiohttp caches it)
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or args.pop("token", "")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if not token:
            body: dict[str, Any] = {"ok": False, "error": "not_authed"}
        elif token != expected:
            body = {"ok": False, "error": "invalid_auth"}
        elif (handler := getattr(self, "_m_" + method.replace(".", "_"), None)) is None:
            body = {"ok": False, "error": "unknown_method"}
        elif scope_error := self._scope_error(method, args):
            body = scope_error
        elif wait := self._retry_after(method, args):
            body = {"ok": False, "error": "ratelimited"}
            with self._lock:
                self.api_calls.append(ApiCall(method, args, body))
            return web.json_response(body, status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        else:
            body = handler(args)
        with self._lock:
            self.api_calls.append(ApiCall(method, args, body))
        return web.json_response(body, headers={"x-oauth-scopes": ",".join(sorted(self.scopes))})

    def _channel_error(self, channel_id: str, *, need_member: bool = True) -> dict[str, Any] | None:
        channel = self.state.channels.get(channel_id)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if need_member and not channel.member:
            return {"ok": False, "error": "not_in_channel"}
        return None

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://standin.slack.com/",
            "team": "Stand-in",
            "user": "citebot",
            "team_id": self.state.team_id,
            "user_id": self.state.bot_user_id,
            "bot_id": self.state.bot_id,
            "is_enterprise_install": False,
        }

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ws_url = self.url.replace("http://", "ws://") + f"/link/?ticket={uuid.uuid4()}&app_id={self.app_id}"
        return {"ok": True, "url": ws_url}

    def _message_fields(self, args: dict[str, Any]) -> tuple[str | None, Any]:
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        text = args.get("text")
        if error := blocks_error(blocks, self.max_block_text):
            return error, None
        if not text and not blocks:
            return "no_text", None
        if text and len(text) > 40000:
            return "msg_too_long", None
        return None, blocks

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel", "")
        with self._lock:
            if error := self._channel_error(channel):
                return error
            error, blocks = self._message_fields(args)
            if error:
                return {"ok": False, "error": error}
            message: dict[str, Any] = {  # a bot token's post: bot_id + user, no subtype
                "type": "message",
                "user": self.state.bot_user_id,
                "bot_id": self.state.bot_id,
                "app_id": self.app_id,
                "team": self.state.team_id,
                "bot_profile": {
                    "id": self.state.bot_id,
                    "app_id": self.app_id,
                    "name": "citebot",
                    "deleted": False,
                    "team_id": self.state.team_id,
                },
                "text": args.get("text") or "",
                "ts": self.next_ts(),
            }
            if blocks:
                message["blocks"] = blocks
            if args.get("thread_ts"):
                if self._find(channel, args["thread_ts"]) is None:
                    return {"ok": False, "error": "thread_not_found"}
                message["thread_ts"] = args["thread_ts"]
            if args.get("metadata"):
                message["metadata"] = args["metadata"]
            message["updates"] = 0
            self._store(channel, message)
            shown = {k: v for k, v in message.items() if k != "updates"}
            return {"ok": True, "channel": channel, "ts": message["ts"], "message": shown}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel", ""), args.get("ts", "")
        with self._lock:
            if error := self._channel_error(channel):
                return error
            message = self._find(channel, ts)
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            if message.get("bot_id") != self.state.bot_id:
                return {"ok": False, "error": "cant_update_message"}
            error, blocks = self._message_fields(args)
            if error:
                return {"ok": False, "error": error}
            message["text"] = args.get("text") or ""
            if "blocks" in args:
                message["blocks"] = blocks or []
            message["updates"] += 1
            if message.get("stream_state") == "streaming":
                message["stream_state"] = "complete"  # an edit ends the stream
            message["edited"] = {"user": self.state.bot_user_id, "ts": self.next_ts()}
            shown = {k: v for k, v in message.items() if k != "updates"}
            return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": shown}

    # --- native streaming (chat.startStream / appendStream / stopStream) ------------------------
    def _stream_chunks(self, message: dict[str, Any], args: dict[str, Any]) -> str | None:
        """Apply ``markdown_text`` and ``chunks`` to a streaming message (None) or say what is wrong."""
        chunks = args.get("chunks")
        if isinstance(chunks, str):
            try:
                chunks = json.loads(chunks)
            except ValueError:
                return "invalid_chunks"
        if chunks is not None and not isinstance(chunks, list):
            return "invalid_chunks"
        text = args.get("markdown_text")
        if text is not None and len(text) > MAX_MARKDOWN_TEXT:
            return "msg_too_long"
        pieces: list[str] = [text] if text else []
        tasks: list[dict[str, Any]] = []
        for chunk in chunks or []:
            kind = chunk.get("type") if isinstance(chunk, dict) else None
            if kind == "markdown_text" and isinstance(chunk.get("text"), str):
                if len(chunk["text"]) > MAX_MARKDOWN_TEXT:
                    return "msg_too_long"
                pieces.append(chunk["text"])
            elif kind == "task_update":
                if not chunk.get("id") or not chunk.get("title") or chunk.get("status") not in TASK_STATUSES:
                    return "invalid_chunks"
                tasks.append(chunk)
            elif kind == "plan_update" and chunk.get("title"):
                message["plan_title"] = chunk["title"]
            elif kind == "blocks":
                if error := blocks_error(chunk.get("blocks"), self.max_block_text):
                    return error
            else:
                return "invalid_chunks"
        message["text"] += "".join(pieces)
        for task in tasks:  # a task_update with a known id updates that task card in place
            message["tasks"][task["id"]] = {k: task[k] for k in ("title", "status") if k in task}
        return None

    def _streaming_message(self, args: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        channel, ts = args.get("channel", ""), args.get("ts", "")
        if not channel or not ts:
            return None, {"ok": False, "error": "invalid_arguments"}
        if error := self._channel_error(channel):
            return None, error
        message = self._find(channel, ts)
        if message is None:
            return None, {"ok": False, "error": "message_not_found"}
        if message.get("bot_id") != self.state.bot_id:
            return None, {"ok": False, "error": "cant_update_message"}
        if message.get("stream_state") != "streaming":
            return None, {"ok": False, "error": "message_not_in_streaming_state"}
        return message, None

    def _m_chat_startStream(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel", "")
        with self._lock:
            if self.streaming_refused:
                return {"ok": False, "error": self.streaming_refused}
            if not channel:
                return {"ok": False, "error": "invalid_arguments"}
            if error := self._channel_error(channel):
                return error
            if not self.state.channels[channel].is_im:  # "Required when streaming to channels."
                if not args.get("recipient_team_id"):
                    return {"ok": False, "error": "missing_recipient_team_id"}
                if not args.get("recipient_user_id"):
                    return {"ok": False, "error": "missing_recipient_user_id"}
            if args.get("recipient_team_id") not in (None, self.state.team_id):
                return {"ok": False, "error": "team_not_found"}
            if args.get("task_display_mode") not in (None, "timeline", "plan"):
                return {"ok": False, "error": "invalid_arguments"}
            message: dict[str, Any] = {
                "type": "message",
                "user": self.state.bot_user_id,
                "bot_id": self.state.bot_id,
                "app_id": self.app_id,
                "team": self.state.team_id,
                "text": "",
                "ts": self.next_ts(),
                "stream_state": "streaming",
                "tasks": {},
                "recipient_user_id": args.get("recipient_user_id"),
                "updates": 0,
            }
            if args.get("thread_ts"):
                if self._find(channel, args["thread_ts"]) is None:
                    return {"ok": False, "error": "thread_not_found"}
                message["thread_ts"] = args["thread_ts"]
            if error := self._stream_chunks(message, args):
                return {"ok": False, "error": error}
            self._store(channel, message)
            return {"ok": True, "channel": channel, "ts": message["ts"]}

    def _m_chat_appendStream(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            message, error = self._streaming_message(args)
            if message is None:
                return error or {}
            if not args.get("markdown_text") and not args.get("chunks"):
                return {"ok": False, "error": "no_text"}
            if failure := self._stream_chunks(message, args):
                return {"ok": False, "error": failure}
            message["updates"] += 1
            return {"ok": True, "channel": args["channel"], "ts": message["ts"]}

    def _m_chat_stopStream(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            message, error = self._streaming_message(args)
            if message is None:
                return error or {}
            blocks = args.get("blocks")
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            if failure := blocks_error(blocks, self.max_block_text):
                return {"ok": False, "error": failure}
            if failure := self._stream_chunks(message, args):
                return {"ok": False, "error": failure}
            if blocks:
                message["blocks"] = blocks
            message["stream_state"] = "complete"
            shown = {k: v for k, v in message.items() if k != "updates"}
            return {"ok": True, "channel": args["channel"], "ts": message["ts"], "message": shown}

    # --- the assistant panel (assistant.threads.*) ---------------------------------------------
    def _assistant_thread(self, args: dict[str, Any], *required: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        channel, ts = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        if not channel or any(args.get(name) in (None, "") for name in required):
            return None, {"ok": False, "error": "invalid_arguments"}
        if channel not in self.state.channels:
            return None, {"ok": False, "error": "channel_not_found"}
        thread = self.state.assistant_threads.get((channel, ts))
        if thread is None:
            return None, {"ok": False, "error": "invalid_thread_ts"}
        return thread, {"ok": True}

    def _m_assistant_threads_setStatus(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            thread, body = self._assistant_thread(args, "thread_ts")
            if thread is None or "status" not in args:
                return body if thread is None else {"ok": False, "error": "invalid_arguments"}
            thread["status"] = args["status"]
            thread.setdefault("statuses", []).append(args["status"])
            return body

    def _m_assistant_threads_setTitle(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            thread, body = self._assistant_thread(args, "thread_ts", "title")
            if thread is not None:
                thread["title"] = args["title"]
            return body

    def _m_assistant_threads_setSuggestedPrompts(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            thread, body = self._assistant_thread(args, "thread_ts", "prompts")
            if thread is None:
                return body
            prompts = args["prompts"]
            if isinstance(prompts, str):
                prompts = json.loads(prompts)
            if (
                not isinstance(prompts, list)
                or not 1 <= len(prompts) <= 4
                or not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts)
            ):
                return {"ok": False, "error": "invalid_arguments"}
            thread["prompts"] = prompts
            thread["prompts_title"] = args.get("title")
            return body

    # --- App Home and modals ------------------------------------------------------------------
    def _m_users_conversations(self, args: dict[str, Any]) -> dict[str, Any]:
        """The caller's (or ``user``'s) conversations of ``types``; with a bot token, a user's
        private conversations only where the bot is in them too."""
        types = [t for t in str(args.get("types") or "public_channel").split(",") if t]
        needed = {"public_channel": "channels:read", "private_channel": "groups:read", "im": "im:read", "mpim": "mpim:read"}
        for t in types:
            if t not in needed:
                return {"ok": False, "error": "invalid_types"}
            if needed[t] not in self.scopes:
                return {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": needed[t],
                    "provided": ",".join(sorted(self.scopes)),
                }
        kinds = {"public_channel": "public", "private_channel": "private", "im": "im", "mpim": "mpim"}
        wanted = {kinds[t] for t in types}
        user = args.get("user")
        with self._lock:
            found = []
            for c in self.state.channels.values():
                if c.kind not in wanted:
                    continue
                if user:
                    if user not in c.users or (c.kind != "public" and not c.member):
                        continue
                elif not c.member:
                    continue
                found.append({"id": c.id, "name": c.name, "is_private": c.is_private, "is_im": c.is_im})
        page = self._page(found, args, default_limit=100)
        if page.get("ok"):
            page["channels"] = page.pop("messages")
        return page

    def _view_error(self, view: Any, kind: str) -> str | None:
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                return "invalid_arguments"
        if not isinstance(view, dict) or view.get("type") != kind:
            return "invalid_arguments"
        blocks = view.get("blocks") or []
        if len(blocks) > 100:
            return "invalid_arguments"
        if kind == "modal" and not (view.get("title") or {}).get("text"):
            return "invalid_arguments"
        for block in blocks:  # inputs are modal-only; everything else is Block Kit as in messages
            if block.get("type") != "input" and blocks_error([block], 1_000_000):
                return "invalid_arguments"
        return None

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user, view = args.get("user_id"), args.get("view")
        if not user or view is None:
            return {"ok": False, "error": "invalid_arguments"}
        if error := self._view_error(view, "home"):
            return {"ok": False, "error": error}
        view = json.loads(view) if isinstance(view, str) else view
        with self._lock:
            self.home_views.setdefault(user, []).append(view)
        return {"ok": True, "view": {"id": "V" + uuid.uuid4().hex[:10].upper(), **view}}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger, view = args.get("trigger_id"), args.get("view")
        if not trigger or view is None:
            return {"ok": False, "error": "invalid_arguments"}
        if error := self._view_error(view, "modal"):
            return {"ok": False, "error": error}
        view = json.loads(view) if isinstance(view, str) else view
        opened = {"id": "V" + uuid.uuid4().hex[:10].upper(), **view}
        with self._lock:
            self.modals.append(opened)
        return {"ok": True, "view": opened}

    def _m_chat_unfurl(self, args: dict[str, Any]) -> dict[str, Any]:
        """Previews for links in a message: ``channel`` + ``ts`` (or ``unfurl_id`` + ``source``) and
        ``unfurls`` (URL → attachment with blocks) for URLs that Slack sent in ``link_shared``."""
        unfurls = args.get("unfurls")
        if isinstance(unfurls, str):
            try:
                unfurls = json.loads(unfurls)
            except ValueError:
                return {"ok": False, "error": "invalid_unfurls_format"}
        if not isinstance(unfurls, dict) or not unfurls:
            return {"ok": False, "error": "invalid_arguments"}
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        if not (channel and ts) and not (args.get("unfurl_id") and args.get("source")):
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            message = self._find(channel, ts) if channel in self.state.channels else None
            if message is None:
                return {"ok": False, "error": "cannot_find_message"}
            shared = set(message.get("shared_links") or ())
            for url, unfurl in unfurls.items():
                if url not in shared:
                    return {"ok": False, "error": "cannot_unfurl_url"}
                if not isinstance(unfurl, dict) or blocks_error(unfurl.get("blocks"), self.max_block_text):
                    return {"ok": False, "error": "invalid_blocks"}
            message.setdefault("unfurls", {}).update(unfurls)
            return {"ok": True}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel", "")
        with self._lock:
            if error := self._channel_error(channel):
                return error
            error, blocks = self._message_fields(args)
            if error:
                return {"ok": False, "error": error}
            self.responses.append(
                {
                    "via": "chat.postEphemeral",
                    "channel": channel,
                    "user": args.get("user"),
                    "text": args.get("text") or "",
                    "blocks": blocks,
                    "response_type": "ephemeral",
                }
            )
            return {"ok": True, "message_ts": self.next_ts()}

    def _m_reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts, name = args.get("channel", ""), args.get("timestamp", ""), args.get("name", "")
        with self._lock:
            if error := self._channel_error(channel):
                return error
            if self._find(channel, ts) is None:
                return {"ok": False, "error": "message_not_found"}
            names = self.state.reactions.setdefault((channel, ts), [])
            if name in names:
                return {"ok": False, "error": "already_reacted"}
            names.append(name)
            return {"ok": True}

    def _m_reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts, name = args.get("channel", ""), args.get("timestamp", ""), args.get("name", "")
        with self._lock:
            names = self.state.reactions.get((channel, ts), [])
            if name not in names:
                return {"ok": False, "error": "no_reaction"}
            names.remove(name)
            return {"ok": True}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel", ""), args.get("ts", "")
        with self._lock:
            if error := self._channel_error(channel):
                return error
            parent = self._find(channel, ts)
            if parent is None:
                return {"ok": False, "error": "thread_not_found"}
            root = parent.get("thread_ts") or parent["ts"]
            messages = [
                {k: v for k, v in m.items() if k != "updates"}
                for m in self.state.messages[channel]
                if m["ts"] == root or m.get("thread_ts") == root
            ]
            return self._page(messages, args, default_limit=1000)

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel", "")
        with self._lock:
            if error := self._channel_error(channel):
                return error
            top = [
                {k: v for k, v in m.items() if k != "updates"}
                for m in reversed(self.state.messages[channel])
                if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
            ]
            return self._page(top, args, default_limit=100)

    @staticmethod
    def _page(items: list[dict[str, Any]], args: dict[str, Any], *, default_limit: int) -> dict[str, Any]:
        """Slack's cursor pagination: ``limit`` (at most 1000) items from the cursor's offset."""
        try:
            limit = int(args.get("limit") or default_limit)
            start = int(base64.b64decode(args["cursor"]).decode().removeprefix("offset:")) if args.get("cursor") else 0
        except ValueError:
            return {"ok": False, "error": "invalid_cursor" if args.get("cursor") else "invalid_limit"}
        limit = max(1, min(limit, 1000))
        page = items[start : start + limit]
        more = start + limit < len(items)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {"ok": True, "messages": page, "has_more": more, "response_metadata": {"next_cursor": cursor}}

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self.state.channels.get(args.get("channel", ""))
            # A private conversation (or DM) the bot is not in is invisible to it.
            if channel is None or (channel.kind != "public" and not channel.member):
                return {"ok": False, "error": "channel_not_found"}
            info: dict[str, Any] = {
                "id": channel.id,
                "name": channel.name,
                "is_im": channel.is_im,
                "is_mpim": channel.kind == "mpim",
                "is_private": channel.is_private,
                "is_channel": channel.kind == "public",
                "is_group": channel.kind == "private",
            }
            if not channel.is_im:  # DMs carry no is_member
                info["is_member"] = channel.member
            return {"ok": True, "channel": info}

    def add_user(self, user_id: str, *, is_admin: bool = False, is_owner: bool = False) -> None:
        """A workspace member with the given role (any other U… id is a plain member)."""
        self.users[user_id] = {"is_admin": is_admin or is_owner, "is_owner": is_owner}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user", "")
        if not user_id:
            return {"ok": False, "error": "invalid_arguments"}
        if user_id not in self.users and not (user_id[:1] in "UW" and user_id[1:].isalnum() and user_id.isupper()):
            return {"ok": False, "error": "user_not_found"}
        role = self.users.get(user_id, {"is_admin": False, "is_owner": False})
        return {
            "ok": True,
            "user": {
                "id": user_id,
                "team_id": self.state.team_id,
                "name": user_id.lower(),
                "deleted": False,
                "is_bot": False,
                "is_app_user": False,
                "is_admin": role["is_admin"],
                "is_owner": role["is_owner"],
                "is_primary_owner": False,
                "is_restricted": False,
                "is_ultra_restricted": False,
                "updated": int(time.time()),
            },
        }

    def _m_files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = self.state.files.get(args.get("file", ""))
            if stored is None:
                return {"ok": False, "error": "file_not_found"}
            return {
                "ok": True,
                "file": json.loads(json.dumps(stored.meta)),
                "comments": [],
                "response_metadata": {"next_cursor": ""},
            }

    # --- files, response_url, Socket Mode --------------------------------------------------
    async def _download(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        file_id = key.split("-", 1)[1] if "-" in key else ""
        stored = self.state.files.get(file_id)
        auth = request.headers.get("Authorization", "")
        if stored is None or stored.always_html or auth != f"Bearer {self.bot_token}":
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        return web.Response(body=stored.content, content_type=stored.meta["mimetype"])

    async def _response_url(self, request: web.Request) -> web.Response:
        """A post to a response_url. An ephemeral one (the default) becomes a message only the user
        who acted sees: it gets a ``message_ts``, and ``click_ephemeral`` can press its buttons."""
        body = await request.json()
        record: dict[str, Any] = {"via": "response_url", "path": request.path, **body}
        with self._lock:
            owner = self._response_urls.get(request.path)
            if owner is not None:
                record["user"], record["channel"] = owner
            if body.get("response_type", "ephemeral") == "ephemeral" and not body.get("delete_original"):
                record["message_ts"] = self.next_ts()
            self.responses.append(record)
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "standin", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if "envelope_id" in data:
                        with self._lock:
                            self.acks[data["envelope_id"]] = Ack(data["envelope_id"], time.monotonic(), data.get("payload"))
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def socket_connected(self) -> bool:
        return bool(self._sockets)

    def send_envelope(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0) -> str:
        """Deliver one Socket Mode envelope (events_api, slash_commands, interactive); return its id."""
        if not self._sockets or self._loop is None:
            raise RuntimeError("no Socket Mode connection")
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = "timeout" if retry_attempt else ""
        self.sent[envelope_id] = time.monotonic()
        ws = self._sockets[-1]
        asyncio.run_coroutine_threadsafe(ws.send_json(envelope), self._loop).result(timeout=5)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 3.0) -> Ack:
        """Slack's limit: an envelope unacknowledged after 3 seconds is a failure."""
        return self.wait_for(lambda: self.acks.get(envelope_id), timeout=timeout)

    # --- HTTP mode -------------------------------------------------------------------------
    def sign(self, body: str, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = f"v0:{ts}:{body}".encode()
        digest = hmac.new((secret or self.signing_secret).encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    def deliver_http(
        self,
        url: str,
        body: dict[str, Any] | str,
        *,
        retry_num: int | None = None,
        headers: dict[str, str] | None = None,
        signed: bool = True,
        timeout: float = 10.0,
    ) -> tuple[int, str, float]:
        """POST to the bot's Request URL like Slack does; return (status, body, seconds taken).

        ``body``: a dict is sent as JSON (Events API) unless it has ``command`` or ``payload``
        (form-encoded slash command / interactivity), a str is sent as is (form-encoded).
        """
        if isinstance(body, dict) and "type" in body and "command" not in body:
            raw, content_type = json.dumps(body), "application/json"
        elif isinstance(body, dict):
            raw, content_type = urllib.parse.urlencode(body), "application/x-www-form-urlencoded"
        else:
            raw, content_type = body, "application/x-www-form-urlencoded"
        all_headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if signed:
            all_headers |= self.sign(raw)
        if retry_num is not None:
            all_headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        all_headers |= headers or {}
        request = urllib.request.Request(url, data=raw.encode(), headers=all_headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode(), time.monotonic() - started
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), time.monotonic() - started

    # --- payloads (shapes of the real ones in shared/testdata/slack) -----------------------
    def response_url(self) -> str:
        return f"{self.url}/hooks/commands/{self.state.team_id}/{next(self._ts)}/{uuid.uuid4().hex[:24]}"

    def _owned_response_url(self, kind: str, user: str, channel: str) -> str:
        url = f"{self.url}/hooks/{kind}/{self.state.team_id}/{next(self._ts)}/{uuid.uuid4().hex[:24]}"
        with self._lock:
            self._response_urls[url.removeprefix(self.url)] = (user, channel)
        return url

    def slash_command(self, command: str, text: str, *, channel: str, user: str = "U111") -> dict[str, str]:
        channel_obj = self.state.channels.get(channel)
        response_url = self._owned_response_url("commands", user, channel)
        return {
            "token": "verification_token",
            "team_id": self.state.team_id,
            "team_domain": "standin",
            "channel_id": channel,
            "channel_name": channel_obj.name if channel_obj else "unknown",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{next(self._ts)}.{next(self._ts)}.{uuid.uuid4().hex}",
        }

    def event_callback(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "verification_token",
            "team_id": self.state.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.state.team_id,
                    "user_id": self.state.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + uuid.uuid4().hex,
        }

    def _subscribed(self, event_type: str) -> None:
        """Slack sends an event only when the manifest subscribes to it and grants its scope."""
        manifest = yaml.safe_load(MANIFEST.read_text())
        if event_type not in manifest["settings"]["event_subscriptions"]["bot_events"]:
            raise ValueError(f"manifest.yaml does not subscribe to {event_type}: Slack would not send it")
        needed = EVENT_SCOPES.get(event_type)
        if needed and needed not in self.scopes:
            raise ValueError(f"{event_type} needs the {needed} scope")

    def assistant_thread_started_event(self, dm: str, user: str, viewing: str | None) -> dict[str, Any]:
        """The user opened the AI app panel (in their DM ``dm`` with the bot) while viewing channel
        ``viewing``: Slack starts a thread (its root a bot message, subtype assistant_app_thread)
        and sends ``assistant_thread_started`` with the thread's context."""
        self._subscribed("assistant_thread_started")
        ts = self.next_ts()
        root = {
            "type": "message",
            "subtype": "assistant_app_thread",
            "user": self.state.bot_user_id,
            "bot_id": self.state.bot_id,
            "text": "New chat",
            "ts": ts,
            "thread_ts": ts,
            "updates": 0,
        }
        context = {"channel_id": viewing, "team_id": self.state.team_id, "enterprise_id": None} if viewing else {}
        with self._lock:
            self._store(dm, root)
            self.state.assistant_threads[(dm, ts)] = {"user": user, "context": context}
        event = {
            "type": "assistant_thread_started",
            "assistant_thread": {"user_id": user, "context": context, "channel_id": dm, "thread_ts": ts},
            "event_ts": self.next_ts(),
        }
        return self.event_callback(event)

    def assistant_thread_context_changed_event(self, dm: str, thread_ts: str, viewing: str) -> dict[str, Any]:
        """The user moved to channel ``viewing`` with the panel open."""
        self._subscribed("assistant_thread_context_changed")
        with self._lock:
            thread = self.state.assistant_threads[(dm, thread_ts)]
            thread["context"] = {"channel_id": viewing, "team_id": self.state.team_id, "enterprise_id": None}
            event = {
                "type": "assistant_thread_context_changed",
                "assistant_thread": {
                    "user_id": thread["user"],
                    "context": thread["context"],
                    "channel_id": dm,
                    "thread_ts": thread_ts,
                },
                "event_ts": self.next_ts(),
            }
        return self.event_callback(event)

    def link_shared_event(self, channel: str, message: dict[str, Any], urls: list[str]) -> dict[str, Any]:
        """``link_shared`` for a stored message's links on the app's unfurl domains (manifest.yaml)."""
        self._subscribed("link_shared")
        manifest = yaml.safe_load(MANIFEST.read_text())
        domains = manifest["features"].get("unfurl_domains") or []
        links = [{"url": u, "domain": urllib.parse.urlsplit(u).hostname or ""} for u in urls]
        links = [link for link in links if any(link["domain"] == d or link["domain"].endswith("." + d) for d in domains)]
        with self._lock:
            message["shared_links"] = [link["url"] for link in links]
        event = {
            "type": "link_shared",
            "channel": channel,
            "is_bot_user_member": self.state.channels[channel].member,
            "user": message.get("user"),
            "message_ts": message["ts"],
            "unfurl_id": "C123456.7890.ABCD",
            "source": "conversations_history",
            "event_ts": self.next_ts(),
            "links": links,
        }
        return self.event_callback(event)

    def app_home_opened_event(self, user: str) -> dict[str, Any]:
        self._subscribed("app_home_opened")
        if not yaml.safe_load(MANIFEST.read_text())["features"]["app_home"].get("home_tab_enabled"):
            raise ValueError("the Home tab is not enabled in manifest.yaml")
        return self.event_callback(
            {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": "home", "event_ts": self.next_ts()}
        )

    def home_action(self, *, user: str, action: dict[str, Any]) -> dict[str, Any]:
        """A ``block_actions`` payload for a click on the user's Home tab (no channel, no response_url)."""
        view = (self.home_views.get(user) or [{}])[-1]
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.state.team_id},
            "api_app_id": self.app_id,
            "token": "verification_token",
            "container": {"type": "view", "view_id": "VHOME"},
            "trigger_id": f"{next(self._ts)}.{uuid.uuid4().hex}",
            "team": {"id": self.state.team_id, "domain": "standin"},
            "is_enterprise_install": False,
            "view": {"id": "VHOME", "type": "home", **view},
            "actions": [action | {"action_ts": f"{time.time():.6f}"}],
        }

    def view_submission(self, *, user: str, view: dict[str, Any], values: dict[str, dict[str, str]]) -> dict[str, Any]:
        """A ``view_submission`` of a modal; ``values``: block_id -> action_id -> typed text."""
        state = {
            b: {a: {"type": "plain_text_input", "value": v} for a, v in actions.items()} for b, actions in values.items()
        }
        return {
            "type": "view_submission",
            "team": {"id": self.state.team_id, "domain": "standin"},
            "user": {"id": user, "username": user.lower(), "team_id": self.state.team_id},
            "api_app_id": self.app_id,
            "token": "verification_token",
            "trigger_id": f"{next(self._ts)}.{uuid.uuid4().hex}",
            "view": view | {"state": {"values": state}, "team_id": self.state.team_id, "app_id": self.app_id},
            "is_enterprise_install": False,
        }

    def message_event(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        """The ``message`` event for a stored message (channel_type from the channel id)."""
        event = {k: v for k, v in message.items() if k != "updates"}
        event |= {"channel": channel, "event_ts": message["ts"], "channel_type": self.state.channels[channel].channel_type}
        return self.event_callback(event)

    def document_mention_event(self, channel: str, user: str = "U111") -> dict[str, Any]:
        """``app_mention`` with ``subtype: document_mention``: the bot was mentioned in a canvas
        (the payload of Slack's documentation, with this workspace's ids)."""
        bot = self.state.bot_user_id
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        ts = self.next_ts()
        return self.event_callback(
            {
                "user": user,
                "subtype": "document_mention",
                "document_mention": {
                    "file_id": file_id,
                    "section_id": "temp:C:GQL71204e5bd23942c79f0a22a51",
                    "mentioning_user_ids": [user],
                },
                "type": "app_mention",
                "ts": ts,
                "text": f"<@{bot}> was mentioned in a canvas",
                "team": self.state.team_id,
                "blocks": [
                    {
                        "type": "section",
                        "block_id": "gcn3v",
                        "text": {"type": "mrkdwn", "text": f"&gt;&gt;&gt;Hey <@{bot}>", "verbatim": False},
                    }
                ],
                "channel": channel,
                "event_ts": ts,
            }
        )

    def app_mention_event(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        event = {k: v for k, v in message.items() if k not in ("updates", "subtype", "upload")}
        event |= {"type": "app_mention", "channel": channel, "event_ts": message["ts"]}
        return self.event_callback(event)

    def file_shared_event(self, channel: str, file_id: str, user: str = "U111") -> dict[str, Any]:
        return self.event_callback(
            {
                "type": "file_shared",
                "file_id": file_id,
                "user_id": user,
                "file": {"id": file_id},
                "channel_id": channel,
                "event_ts": self.next_ts(),
            }
        )

    def block_action(
        self,
        *,
        channel: str,
        message_ts: str,
        action: dict[str, Any],
        user: str = "U111",
    ) -> dict[str, Any]:
        """An ``interactive`` block_actions payload for a click on a button of a bot message."""
        with self._lock:
            message = self._find(channel, message_ts) or {}
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.state.team_id},
            "api_app_id": self.app_id,
            "token": "verification_token",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"{next(self._ts)}.{uuid.uuid4().hex}",
            "team": {"id": self.state.team_id, "domain": "standin"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel.lower()},
            "message": {k: v for k, v in message.items() if k != "updates"},
            "state": {"values": {}},
            "response_url": self.response_url(),
            "actions": [action | {"action_ts": f"{time.time():.6f}"}],
        }

    def click_ephemeral(self, response: dict[str, Any], action_id: str) -> dict[str, Any]:
        """The ``block_actions`` payload Slack sends when the user who saw an ephemeral response
        (``response`` from ``responses``) presses its button ``action_id``. As in Slack, only that
        user can press it, the payload has no ``message`` (Slack keeps no copy of ephemeral
        messages) and ``container.is_ephemeral`` is true."""
        if "message_ts" not in response or "user" not in response:
            raise AssertionError("not an ephemeral message that a user saw")
        found = [
            (block.get("block_id", ""), element)
            for block in response.get("blocks") or []
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("action_id") == action_id
        ]
        if not found:
            raise AssertionError(f"the message has no button {action_id!r}")
        block_id, element = found[0]
        user, channel = response["user"], response["channel"]
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": self.state.team_id},
            "api_app_id": self.app_id,
            "token": "verification_token",
            "container": {
                "type": "message",
                "message_ts": response["message_ts"],
                "channel_id": channel,
                "is_ephemeral": True,
            },
            "trigger_id": f"{next(self._ts)}.{uuid.uuid4().hex}",
            "team": {"id": self.state.team_id, "domain": "standin"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.state.channels[channel].name if channel in self.state.channels else ""},
            "response_url": self._owned_response_url("actions", user, channel),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": element.get("text"),
                    "value": element.get("value", ""),
                    "type": element.get("type", "button"),
                    **({"style": element["style"]} if "style" in element else {}),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
