"""PDF shared in a channel, private channel or DM → ``Citebot.ingest_pdf`` → reply in the file's thread.

Both ``message``/``file_share`` and ``file_shared`` arrive for one upload; the per-(channel, file)
claim makes only one of them do the work (``file_shared`` waits briefly so the message event,
which knows the thread, usually wins).
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.answering import strip_mentions
from bot.conversation import addressed_thread, answer_message
from bot.deps import Deps, log, scope_for
from bot.guard import never_silent
from bot.slack_files import complete_file, download_pdf, is_pdf
from citebot.domain import Provenance

WORKING, DONE, FAILED = "hourglass_flowing_sand", "white_check_mark", "x"


async def _react(client: AsyncWebClient, channel: str, ts: str, add: str | None, remove: str | None = None) -> None:
    """Progress reactions are a courtesy: failures (already_reacted, no permission) are ignored."""
    for method, name in ((client.reactions_remove, remove), (client.reactions_add, add)):
        if name:
            try:
                await method(channel=channel, timestamp=ts, name=name)
            except SlackApiError as error:
                log.debug("reaction %s on %s/%s: %s", name, channel, ts, error.response.get("error"))


async def ingest_file(
    deps: Deps,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    file: dict[str, Any],
    *,
    channel: str,
    thread_ts: str | None,
    user: str,
) -> bool:
    """Download and index one Slack file; reply in ``thread_ts``. True when it is indexed."""

    async def report(text: str) -> None:
        await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

    name = file.get("name") or file.get("id", "file")
    async with never_silent(deps, report, f"ingesting {name} in {channel}"):
        file = await complete_file(client, file)
        pdf = await download_pdf(
            file,
            token=client.token or "",
            api_url=deps.settings.slack_api_url,
            max_bytes=deps.settings.max_pdf_bytes,
            timeout_s=deps.settings.download_timeout_s,
        )
        title = file.get("title") or ""
        provenance = Provenance(
            scope=scope_for(context, channel),
            user=user,
            source="slack",
            link=file.get("permalink") or "",
            filename=file.get("name") or "",
        )
        result = await asyncio.to_thread(
            deps.citebot.ingest_pdf, pdf, provenance, title if title != file.get("name") else ""
        )
        text = messages.ingest_text(result, file.get("name") or "")
        await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=[messages.section(text)])
        return True
    return False


async def handle_file_message(deps: Deps, client: AsyncWebClient, context: AsyncBoltContext, event: dict[str, Any]) -> None:
    """A message with files: index its PDFs, then answer the text if it was addressed to the bot."""
    channel, ts = event["channel"], event["ts"]
    scope = scope_for(context, channel)
    files = [
        await complete_file(client, f) if f.get("file_access") == "check_file_info" else f for f in event.get("files") or []
    ]
    pdfs = [f for f in files if is_pdf(f)]
    thread = await addressed_thread(deps, client, context, event) if event.get("text") else None
    if not pdfs and thread is None:
        return  # non-PDF files, not talking to the bot: ignore
    if not await deps.claims.first(f"msg:{scope.key}:{ts}"):
        return
    if pdfs:
        await _react(client, channel, ts, WORKING)
        results = []
        for f in pdfs:
            if await deps.claims.first(f"file:{scope.key}:{f['id']}"):
                results.append(
                    await ingest_file(
                        deps,
                        client,
                        context,
                        f,
                        channel=channel,
                        thread_ts=event.get("thread_ts") or ts,
                        user=event.get("user", ""),
                    )
                )
        await _react(client, channel, ts, DONE if all(results) else FAILED, remove=WORKING)
    if thread is not None and strip_mentions(event.get("text") or ""):
        await answer_message(deps, client, context, event, thread)


def _share_ts(file: dict[str, Any], channel: str) -> tuple[str | None, str | None]:
    """(message ts, thread ts) of the file's share in ``channel``, from files.info's ``shares``."""
    for kind in ("public", "private"):
        for share in (file.get("shares") or {}).get(kind, {}).get(channel, []):
            return share.get("ts"), share.get("thread_ts") or share.get("ts")
    return None, None


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event({"type": "message", "subtype": "file_share"})
    async def on_file_share(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        async with never_silent(
            deps,
            lambda text: client.chat_postMessage(
                channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"], text=text
            ),
            "file share",
        ):
            await handle_file_message(deps, client, context, event)

    @app.event("file_shared")
    async def on_file_shared(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        channel = event.get("channel_id") or ""
        async with never_silent(deps, lambda text: client.chat_postMessage(channel=channel, text=text), "file_shared"):
            await asyncio.sleep(deps.file_shared_grace_s)
            scope = scope_for(context, channel)
            file = await complete_file(client, {"id": event["file_id"]})
            if not is_pdf(file) or not await deps.claims.first(f"file:{scope.key}:{file['id']}"):
                return
            ts, thread_ts = _share_ts(file, channel)
            if ts:
                await _react(client, channel, ts, WORKING)
            ok = await ingest_file(
                deps, client, context, file, channel=channel, thread_ts=thread_ts, user=event.get("user_id", "")
            )
            if ts:
                await _react(client, channel, ts, DONE if ok else FAILED, remove=WORKING)
