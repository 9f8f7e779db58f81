"""Slack's native streaming for answers: ``chat.startStream`` / ``appendStream`` / ``stopStream``
(through slack_sdk's ``AsyncWebClient.chat_stream``) with a task timeline.

The timeline a user follows: "Searching N documents in #channel" → "Reranked to K passages" →
"Writing the answer" (offline: "Picking the supporting sentences"), then the answer's text, then,
when the stream stops, the Sources and the feedback buttons.

Calls are few: the text is buffered (``STREAM_BUFFER_CHARS`` characters, or ``STREAM_FLUSH_S``
seconds) so a typical answer takes a handful of calls in all (start, one timeline update, a few
appends, stop). ``startStream`` and
``stopStream`` are Tier 2, ``appendStream`` Tier 4; the streaming client does not wait on 429: an
append that is rate limited keeps its text in the buffer for the next one (or the stop).

``NativeStream.open`` returns None when Slack refuses to stream (an older workspace, a method not
allowed for the app, a rate limit at the start): the caller then falls back to a placeholder edited
with ``chat.update``. A stream that breaks later (``message_not_in_streaming_state``…) or whose final
text differs from what was streamed is finished by replacing the message with ``chat.update``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.models.messages.chunk import TaskUpdateChunk
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import log

STREAM_BUFFER_CHARS = 1200  # text buffered before an appendStream call…
STREAM_FLUSH_S = 3.0  # …or text waiting this long (a short answer still appears as it is written)
MAX_STREAM_TEXT = 12_000  # Slack's limit on markdown_text per call
# Nodes of the answer dataflow whose results the timeline shows (unknown nodes are ignored).
PASSAGE_NODES = ("relevant_passages",)  # what the answer reads, after the second ranking stage
# Errors that mean "this workspace/app cannot stream": no point trying again for a while.
REFUSALS_REMEMBERED_S = 600.0
_refused: dict[str, float] = {}  # workspace -> until (monotonic)
_channel_names: dict[str, str] = {}


def _error(error: SlackApiError) -> str:
    return str(error.response.get("error") or "")


def _task(task_id: str, title: str, status: str) -> TaskUpdateChunk:
    return TaskUpdateChunk(id=task_id, title=title, status=status)


async def channel_label(client: AsyncWebClient, channel: str) -> str:
    """``#name`` of a channel for the timeline ("" for DMs or when it cannot be read)."""
    if channel.startswith("D"):
        return ""
    if channel not in _channel_names:
        try:
            info = await client.conversations_info(channel=channel)
            conversation = info.get("channel") or {}
            _channel_names[channel] = "" if conversation.get("is_im") else f"#{conversation.get('name') or channel}"
        except SlackApiError:
            return ""
        if len(_channel_names) > 10_000:
            _channel_names.clear()
    return _channel_names[channel]


class NativeStream:
    """One answer being streamed. ``progress`` and ``partial`` are thread-safe (called from the
    worker thread running ``Citebot.ask``); ``finish``/``fail`` end the stream."""

    def __init__(self, streamer: AsyncChatStream, *, channel_name: str, offline: bool) -> None:
        self._streamer = streamer
        self._search_title, self._offline = messages.task_search_title(None, channel_name), offline
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._sent = ""  # safe text handed to the streamer (buffered or on Slack)
        self._channel_name = channel_name
        self._passages: int | None = None
        self._broken = False
        self._quiet_until = 0.0  # after a 429 on an append, until Retry-After
        self._flushed_at = time.monotonic()
        self.tail_refused = False  # Slack refused the Sources blocks: they were sent as text
        self._pump_task = asyncio.create_task(self._pump())

    @classmethod
    async def open(
        cls,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        user: str,
        team: str,
        offline: bool,
    ) -> NativeStream | None:
        """Start the stream with the first timeline step; None when Slack refuses to stream."""
        if _refused.get(team, 0.0) > time.monotonic():
            return None
        channel_name = await channel_label(client, channel)
        streamer = await client.chat_stream(
            channel=channel,
            thread_ts=thread_ts,
            recipient_team_id=team or None,
            recipient_user_id=user or None,
            task_display_mode="timeline",
            buffer_size=STREAM_BUFFER_CHARS,
        )
        try:
            title = messages.task_search_title(None, channel_name)
            await streamer.append(chunks=[_task(messages.TASK_SEARCH, title, "in_progress")])
        except SlackApiError as error:
            if error.response.status_code != 429:
                _refused[team] = time.monotonic() + REFUSALS_REMEMBERED_S
            log.info("native streaming refused (%s); editing a placeholder instead", _error(error))
            return None
        return cls(streamer, channel_name=channel_name, offline=offline)

    @property
    def ts(self) -> str:
        return str(self._streamer.ts)

    # --- from the worker thread ---------------------------------------------------------------
    def searching(self, documents: int) -> None:
        """From the event loop: the number of documents the question searches (the first task)."""
        self._queue.put_nowait(("documents", documents))

    def progress(self, node: str, result: Any) -> None:
        if node in PASSAGE_NODES and isinstance(result, list):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, ("passages", len(result)))

    def partial(self, text_so_far: str) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, ("text", text_so_far))

    # --- on the event loop ----------------------------------------------------------------------
    async def _pump(self) -> None:
        while (event := await self._queue.get()) is not None:
            kind, value = event
            if self._broken:
                continue
            if kind == "documents":
                self._search_title = messages.task_search_title(value, self._channel_name)
            elif kind == "passages" and value != self._passages:
                self._passages = value  # a later (reranking) node refines the count
                await self._call(self._streamer.append(chunks=self._timeline_chunks("in_progress")))
            elif kind == "text":
                await self._text(value)

    def _timeline_chunks(self, writing: str) -> list[TaskUpdateChunk]:
        """The whole timeline: search and rerank done, writing ``writing`` (a task status)."""
        chunks = [_task(messages.TASK_SEARCH, self._search_title, "complete")]
        if self._passages is not None:
            chunks.append(_task(messages.TASK_RERANK, messages.task_rerank_title(self._passages), "complete"))
        chunks.append(_task(messages.TASK_WRITE, messages.task_write_title(offline=self._offline), writing))
        return chunks

    async def _text(self, text: str) -> None:
        """Hand the new part of the text so far to the streamer (which sends it once its buffer is
        full), holding back a possibly unfinished last word, link or token."""
        safe = messages.safe_markdown(text.lstrip())
        cut = max(safe.rfind(" "), safe.rfind("\n"))
        safe = safe[: cut + 1] if cut > 0 else ""
        if not safe.startswith(self._sent) or len(safe) == len(self._sent) or time.monotonic() < self._quiet_until:
            return
        delta = safe[len(self._sent) :]
        for start in range(0, len(delta), MAX_STREAM_TEXT):
            piece = delta[start : start + MAX_STREAM_TEXT]
            self._sent += piece  # in the streamer's buffer now, whether or not this call flushes it
            due = time.monotonic() - self._flushed_at >= STREAM_FLUSH_S
            # chunks=[] makes the streamer flush its buffer now (it would wait for buffer_size)
            if not await self._call(self._streamer.append(markdown_text=piece, chunks=[] if due else None)):
                return

    async def _call(self, call: Any) -> bool:
        try:
            if await call is not None:  # None: only buffered
                self._flushed_at = time.monotonic()
            return True
        except SlackApiError as error:
            if error.response.status_code == 429:
                headers = error.response.headers or {}
                retry = float(headers.get("Retry-After") or headers.get("retry-after") or 1)
                self._quiet_until = time.monotonic() + retry
                log.info("stream append rate limited; %s s", retry)
                return False
            log.warning("stream broke (%s); the answer will replace it", _error(error))
            self._broken = True
            return False

    async def _drain(self) -> None:
        self._queue.put_nowait(None)
        await self._pump_task

    async def finish(self, final_text: str, tail: list[messages.Block], tail_as_text: str = "") -> bool:
        """Stop the stream with the rest of ``final_text`` and ``tail`` (Sources, feedback) under it;
        if Slack refuses those blocks, with ``tail_as_text`` appended to the text instead. False:
        the stream could not carry the final answer (broken, or the streamed text differs from the
        final one): the caller replaces the message with ``chat.update``."""
        await self._drain()
        safe = messages.safe_markdown(final_text.lstrip())
        if self._broken or not safe.startswith(self._sent):
            await self._close_quietly()
            return False
        rest = safe[len(self._sent) :]
        try:
            while len(rest) > MAX_STREAM_TEXT:
                await self._streamer.append(markdown_text=rest[:MAX_STREAM_TEXT])
                rest = rest[MAX_STREAM_TEXT:]
            try:
                await self._streamer.stop(markdown_text=rest or None, chunks=self._timeline_chunks("complete"), blocks=tail)
            except SlackApiError as error:
                if _error(error) not in ("msg_blocks_too_long", "invalid_blocks", "msg_too_long"):
                    raise
                log.warning("Slack refused the answer's blocks (%s); sources as text", _error(error))
                self.tail_refused = True
                ending = rest + (f"\n\n{tail_as_text}" if tail_as_text else "")
                await self._streamer.stop(markdown_text=ending or None, chunks=self._timeline_chunks("complete"))
        except SlackApiError as error:
            log.warning("stopping the stream failed (%s); the answer will replace it", _error(error))
            await self._close_quietly()
            return False
        return True

    async def fail(self, text: str) -> None:
        """End the stream with an error message (the question could not be answered)."""
        await self._drain()
        chunks = self._timeline_chunks("error")
        try:
            await self._streamer.stop(markdown_text="\n\n" + text if self._sent else text, chunks=chunks)
        except SlackApiError as error:
            log.warning("stopping the stream failed (%s)", _error(error))
            raise

    async def _close_quietly(self) -> None:
        with contextlib.suppress(SlackApiError, Exception):
            if self._streamer._state != "completed":  # noqa: SLF001 (the SDK exposes no public state)
                await self._streamer.stop(chunks=self._timeline_chunks("complete"))
