"""PDF shared in a channel, private channel, DM or group DM → ``ingest_file`` → ``Citebot.ingest_pdf``
→ a reply in the file's thread, with ⏳ then ✅/❌ on the message.

Both ``message``/``file_share`` and ``file_shared`` arrive for one upload; the claim on (conversation,
file, share) makes only one of them do the work (``file_shared`` waits briefly so the message event,
which knows the thread, usually wins), while a later re-share (after ``/forget``, say) is new work.
``file_shared`` also arrives for conversations the bot is not in: those are skipped, and its errors
before the file is known to be a PDF are logged, not posted. A caption is answered only when it
mentions the bot. Each file waits its turn in the ingest queue (bot/queueing.py), saying so in its
thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.answering import answer_message, read_thread_of
from bot.deps import Deps, log
from bot.guard import never_silent, on_message
from bot.incoming import Incoming, scope_of
from bot.queueing import Turn, ingest_turn
from bot.slack_files import complete_file, download_pdf, is_pdf
from citebot.domain import Provenance, Scope

WORKING, DONE, FAILED = "hourglass_flowing_sand", "white_check_mark", "x"


async def _react(client: AsyncWebClient, channel: str, ts: str, add: str | None, remove: str | None = None) -> None:
    """Progress reactions are a courtesy: failures (already_reacted, no permission) are ignored."""
    for method, name in ((client.reactions_remove, remove), (client.reactions_add, add)):
        if name and ts:
            try:
                await method(channel=channel, timestamp=ts, name=name)
            except SlackApiError as error:
                log.debug("reaction %s on %s/%s: %s", name, channel, ts, error.response.get("error"))


async def ingest_file(
    deps: Deps, client: AsyncWebClient, scope: Scope, file: dict[str, Any], *, thread_ts: str | None, user: str
) -> bool:
    """Download and index one Slack file; reply in ``thread_ts``. True when it is indexed."""
    channel = scope.channel
    turn: Turn | None = None

    async def report(text: str) -> None:
        if turn is not None:  # in place of the queue note, if there is one
            await turn.say(text)
        else:
            await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

    name = file.get("name") or file.get("id", "file")
    async with never_silent(deps, report, f"ingesting {name} in {channel}"):
        # The turn is taken before downloading, so waiting shares hold no PDF bytes in memory.
        async with ingest_turn(deps, client, scope=scope, name=name, user=user, thread_ts=thread_ts) as turn:
            if not turn.started:
                return False
            file = await complete_file(client, file)
            pdf = await download_pdf(
                file,
                token=client.token or "",
                api_url=deps.settings.slack_api_url,
                max_bytes=deps.settings.max_pdf_bytes,
                timeout_s=deps.settings.download_timeout_s,
            )
            title = file.get("title") or ""
            link = file.get("permalink") or ""
            provenance = Provenance(scope=scope, user=user, source="slack", link=link, filename=file.get("name") or "")
            result = await deps.capacity.ingest.run(
                deps.citebot.ingest_pdf, pdf, provenance, title if title != file.get("name") else ""
            )
        text = messages.ingest_text(result, file.get("name") or "", link=link)
        await turn.say(text, [messages.section(text)])
        return True
    return False


async def ingest_shared(
    deps: Deps,
    client: AsyncWebClient,
    scope: Scope,
    pdfs: list[dict[str, Any]],
    *,
    ts: str,
    thread_ts: str | None,
    user: str,
) -> None:
    """Index the PDFs of one share (message ``ts``) not yet claimed, with progress reactions."""
    mine = [f for f in pdfs if await deps.claims.first(f"file:{scope.key}:{f['id']}:{ts}")]
    if not mine:
        return  # another delivery of this share does (or did) the work
    await _react(client, scope.channel, ts, WORKING)
    results = await asyncio.gather(  # each file takes its own place in the ingest queue
        *(ingest_file(deps, client, scope, f, thread_ts=thread_ts, user=user) for f in mine)
    )
    await _react(client, scope.channel, ts, DONE if all(results) else FAILED, remove=WORKING)


def _latest_share(file: dict[str, Any], channel: str) -> tuple[str, str | None]:
    """(message ts, thread ts) of the file's newest share in ``channel``, from files.info's ``shares``."""
    shares = [s for kind in ("public", "private") for s in (file.get("shares") or {}).get(kind, {}).get(channel, [])]
    if not shares:
        return "", None
    share = max(shares, key=lambda s: float(s.get("ts") or 0))
    return str(share.get("ts") or ""), share.get("thread_ts") or share.get("ts")


async def _bot_is_member(client: AsyncWebClient, channel: str) -> bool:
    try:
        info = (await client.conversations_info(channel=channel))["channel"]
    except SlackApiError as error:
        log.info("conversations.info %s: %s", channel, error.response.get("error"))
        return False
    return bool(info.get("is_member") or info.get("is_im"))


async def _has_files(body: dict[str, Any]) -> bool:
    return bool((body.get("event") or {}).get("files"))


def register(app: AsyncApp, deps: Deps) -> None:
    def worth_reporting(message: Incoming) -> bool:
        return message.mentions_bot or any(is_pdf(f) for f in message.files)

    @on_message(app, deps, {"type": "message", "subtype": "file_share"}, report_if=worth_reporting)
    @on_message(app, deps, "app_mention", report_if=worth_reporting, matchers=[_has_files])
    async def on_file_message(message: Incoming, client: AsyncWebClient) -> None:
        files = [await complete_file(client, f) if f.get("file_access") == "check_file_info" else f for f in message.files]
        pdfs = [f for f in files if is_pdf(f)]
        question = message.mentions_bot and message.written_by_a_person
        if not (pdfs or question) or not await deps.claims.first(message.claim_key):
            return
        if pdfs:
            await ingest_shared(
                deps, client, message.scope, pdfs, ts=message.ts, thread_ts=message.reply_thread, user=message.user
            )
        if question:
            await answer_message(deps, client, message, await read_thread_of(client, message))

    @app.event("file_shared")
    async def on_file_shared(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        channel = str(event.get("channel_id") or "")
        async with never_silent(deps, None, f"file_shared {event.get('file_id')} in {channel}"):  # nobody asked yet
            await asyncio.sleep(deps.file_shared_grace_s)
            file = await complete_file(client, {"id": event["file_id"]})
            if not is_pdf(file):
                return
            if not await _bot_is_member(client, channel):
                log.info("file %s shared in %s, where I am not a member: not indexed", file["id"], channel)
                return
            ts, thread_ts = _latest_share(file, channel)
            await ingest_shared(
                deps, client, scope_of(context, channel), [file], ts=ts, thread_ts=thread_ts, user=event.get("user_id", "")
            )
