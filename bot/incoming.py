"""What arrives from Slack, parsed once: a message (``Incoming``), a slash command (``Command``) or a
button click (``Click``). Listeners read these values, never the raw payloads.

Message text is turned into what the person typed: mention tokens removed, Slack's escaping
(``&amp;`` ``&lt;`` ``&gt;``) undone, and ``<https://…|label>`` / ``<#C…|name>`` markup unwrapped,
so the search and the model see the question verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from citebot.domain import Scope

Conversation = Literal["channel", "group", "im", "mpim"]
# Message subtypes that are people writing (answered when addressed); everything else (canvas
# mentions, edits, deletions, joins, bot posts…) is acknowledged and ignored.
ANSWERED_SUBTYPES = (None, "thread_broadcast", "file_share")

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_MARKUP = re.compile(r"<([^<>]+)>")


def _unwrap(inner: str) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        return "@" + (label or target[1:].split("^")[0]).lstrip("@")
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if label and label not in target:
        return f"{label} ({target})"
    return target.removeprefix("mailto:")


def plain_text(slack_text: str) -> str:
    """Slack message text as the person typed it: mentions of anyone removed, markup unwrapped,
    escaping undone (``&amp;`` last, so ``&amp;lt;`` stays ``&lt;``)."""
    text = _MARKUP.sub(lambda m: _unwrap(m.group(1)), _MENTION.sub("", slack_text or ""))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def scope_of(context: AsyncBoltContext, channel: str) -> Scope:
    """(team, channel) of a request. The team is the installation's (auth.test), so a channel
    shared with another organisation is one scope whoever speaks in it; a DM is its own channel."""
    authorized = context.authorize_result
    team = (authorized.team_id if authorized is not None else None) or context.team_id or ""
    return Scope(workspace=team, channel=channel)


@dataclass(frozen=True)
class Incoming:
    """One message event (``message`` or ``app_mention``) as the bot needs it."""

    scope: Scope
    channel: str
    ts: str
    thread_ts: str | None  # the thread it was posted in (None: top level)
    user: str
    text: str  # plain_text of the message
    conversation: Conversation
    subtype: str | None
    mentions_bot: bool
    files: tuple[dict[str, Any], ...]
    parent_user_id: str  # author of the thread's first message (thread replies only)
    bot_user_id: str  # who "the bot" is for this request (its user and bot ids)
    bot_id: str

    @classmethod
    def parse(cls, event: dict[str, Any], context: AsyncBoltContext) -> Incoming:
        channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
        bot_user = context.bot_user_id or ""
        raw = str(event.get("text") or "")
        kind = event.get("channel_type") or ("im" if channel.startswith("D") else "channel")
        thread_ts = event.get("thread_ts")
        return cls(
            scope=scope_of(context, channel),
            channel=channel,
            ts=ts,
            thread_ts=thread_ts if thread_ts and thread_ts != ts else None,
            user=str(event.get("user") or ""),
            text=plain_text(raw),
            conversation=kind if kind in ("channel", "group", "im", "mpim") else "channel",
            subtype=event.get("subtype"),
            mentions_bot=event.get("type") == "app_mention" or (bool(bot_user) and f"<@{bot_user}" in raw),
            files=tuple(event.get("files") or ()),
            parent_user_id=str(event.get("parent_user_id") or ""),
            bot_user_id=bot_user,
            bot_id=context.bot_id or "",
        )

    @property
    def written_by_a_person(self) -> bool:
        return self.subtype in ANSWERED_SUBTYPES

    @property
    def addressed(self) -> bool:
        """Talking to the bot on its face: a mention, or a message in a DM with the bot (in a group
        DM, as in a channel, only a mention is)."""
        return self.written_by_a_person and (self.mentions_bot or self.conversation == "im")

    @property
    def reply_thread(self) -> str:
        """Where a reply goes: the message's thread, or a new thread under it."""
        return self.thread_ts or self.ts

    @property
    def thread_key(self) -> tuple[str, str]:
        return self.channel, self.reply_thread

    @property
    def claim_key(self) -> str:
        return f"msg:{self.scope.key}:{self.ts}"


@dataclass(frozen=True)
class Command:
    """One slash command; ``tell`` answers the person who typed it, and only them."""

    name: str
    text: str  # plain_text of what followed the command
    channel: str
    user: str
    trigger_id: str
    scope: Scope
    in_dm: bool  # a DM (between two people, or with the bot), where the bot may not be able to post
    client: AsyncWebClient
    respond: AsyncRespond

    @classmethod
    def parse(
        cls, command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient, respond: AsyncRespond
    ) -> Command:
        channel = str(command.get("channel_id") or "")
        return cls(
            name=str(command.get("command") or ""),
            text=plain_text(str(command.get("text") or "")),
            channel=channel,
            user=str(command.get("user_id") or ""),
            trigger_id=str(command.get("trigger_id") or ""),
            scope=scope_of(context, channel),
            in_dm=channel.startswith("D") or command.get("channel_name") == "directmessage",
            client=client,
            respond=respond,
        )

    @property
    def claim_key(self) -> str:
        return f"cmd:{self.trigger_id}"

    async def tell(self, text: str, blocks: list[dict[str, Any]] | None = None, *, replace: bool = False) -> None:
        await self.respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=replace)


@dataclass(frozen=True)
class Click:
    """One button click on a bot message; ``tell`` answers the person who clicked."""

    action_id: str
    value: str
    channel: str
    user: str
    message_ts: str
    scope: Scope
    respond: AsyncRespond

    @classmethod
    def parse(cls, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond) -> Click:
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        return cls(
            action_id=str(action.get("action_id") or ""),
            value=str(action.get("value") or ""),
            channel=channel,
            user=str((body.get("user") or {}).get("id") or ""),
            message_ts=str(container.get("message_ts") or ""),
            scope=scope_of(context, channel),
            respond=respond,
        )

    async def tell(self, text: str, blocks: list[dict[str, Any]] | None = None, *, replace: bool = False) -> None:
        await self.respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=replace)
