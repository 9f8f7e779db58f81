"""Answer a question in a Slack thread: placeholder → streamed partial text → final Block Kit answer.

Used by /ask and by mentions; ``answer_in_thread`` is where a question becomes ``Citebot.ask`` (in a
worker thread). ``read_thread`` pages through a thread with cursors, keeping its newest messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import Deps, log
from bot.incoming import Incoming, plain_text
from bot.pacing import PartialBudget
from bot.streaming import NativeStream
from citebot.domain import Answer, Mode, Scope
from citebot.errors import CitebotError
from citebot.settings import TOP_K_MAX, TOP_K_MIN

THREAD_PAGE = 200  # conversations.replies page size (Slack recommends ≤ 200)
THREAD_KEPT = 200  # newest messages of a thread kept as history material
HISTORY_TURNS = 12


class UsageError(ValueError):
    """The request cannot be understood; ``str()`` is a usage hint for the user."""


@dataclass(frozen=True)
class AskOptions:
    question: str
    top_k: int | None = None
    alpha: float | None = None
    mode: Mode = "answer"


_FLAG = re.compile(r"(?:--|—)([A-Za-z][\w-]*)(?:=(\S*))?(?:\s+|$)")


def parse_ask(text: str) -> AskOptions:
    """``/ask [--top-k N] [--alpha X] [--summary] question``: options are the leading ``--flags``
    only; the question after them is kept verbatim (quotes, apostrophes, later ``--words``)."""
    rest = text.strip()
    top_k: int | None = None
    alpha: float | None = None
    mode: Mode = "answer"
    while match := _FLAG.match(rest):
        name, inline = "--" + match.group(1), match.group(2)
        rest = rest[match.end() :]
        if name in ("--top-k", "--alpha"):
            if inline is None:
                inline, _, rest = rest.partition(" ")
                rest = rest.lstrip()
            try:
                if name == "--top-k":
                    top_k = int(inline)
                    if not TOP_K_MIN <= top_k <= TOP_K_MAX:
                        raise ValueError
                else:
                    alpha = float(inline)
                    if not 0.0 <= alpha <= 1.0:
                        raise ValueError
            except ValueError:
                wanted = f"a whole number from {TOP_K_MIN} to {TOP_K_MAX}" if name == "--top-k" else "a number from 0 to 1"
                raise UsageError(f"`{name}` needs {wanted}.\n{messages.ASK_USAGE}") from None
        elif name == "--summary" and inline is None:
            mode = "summary"
        else:
            raise UsageError(f"Unknown option `{messages.neutralise(match.group(0).strip())}`.\n{messages.ASK_USAGE}")
    question = rest.strip()
    if not question and mode == "answer":
        raise UsageError(messages.ASK_USAGE)
    return AskOptions(question=question or "Summarise the documents in this channel.", top_k=top_k, alpha=alpha, mode=mode)


def _retry_after(error: SlackApiError) -> float:
    headers = getattr(error.response, "headers", None) or {}
    value = headers.get("retry-after") or headers.get("Retry-After") or 1
    try:
        return float(value[0] if isinstance(value, list) else value)
    except (TypeError, ValueError):
        return 1.0


class ThrottledUpdater:
    """Bridge ``on_partial`` (called in the worker thread) to ``chat.update``: at most one partial per
    interval per answer, within the workspace's shared ``budget``, skipped (not queued) while Slack
    rate-limits. ``close`` never waits for a backoff: only for a partial already on the wire, so it
    cannot land after (and overwrite) the final answer."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        ts: str,
        interval_s: float,
        budget: PartialBudget | None = None,
        workspace: str = "",
    ) -> None:
        self._client, self._channel, self._ts, self._interval = client, channel, ts, interval_s
        self._budget, self._workspace = budget, workspace
        self._loop = asyncio.get_running_loop()
        self._latest: str | None = None
        self._wake = asyncio.Event()
        self._done = False
        self._sending = False
        self._task = asyncio.create_task(self._pump())

    def push(self, text_so_far: str) -> None:
        """Thread-safe: remember the newest text and wake the pump."""
        self._latest = text_so_far
        self._loop.call_soon_threadsafe(self._wake.set)

    async def _pump(self) -> None:
        sent: str | None = None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._done:
                return
            text = self._latest
            if text and text != sent:
                if self._budget is not None and not self._budget.take(self._workspace):
                    self._wake.set()  # try the newest text again after the interval
                else:
                    sent = text
                    await self._send(text)
                    if self._done:
                        return
            await asyncio.sleep(self._interval)

    async def _send(self, text: str) -> None:
        self._sending = True
        try:
            await self._client.chat_update(channel=self._channel, ts=self._ts, text=messages.partial_text(text))
        except SlackApiError as error:  # a lost partial update is harmless; the final one matters
            if error.response.status_code == 429 and self._budget is not None:
                self._budget.rate_limited(self._workspace, _retry_after(error))
            log.info("partial update skipped: %s", error.response.get("error"))
        except Exception as error:
            log.warning("partial update failed: %s", error)
        finally:
            self._sending = False

    async def close(self) -> None:
        self._done = True
        self._wake.set()
        if not self._sending:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def answer_in_thread(
    deps: Deps,
    client: AsyncWebClient,
    *,
    scope: Scope,
    channel: str,
    thread_ts: str,
    options: AskOptions,
    history: list[tuple[str, str]] | None = None,
    user: str = "",
) -> None:
    """Stream the answer into the thread with Slack's native streaming (a task timeline, then the
    text, then Sources and feedback buttons); where Slack refuses to stream, post "Thinking…" and
    edit it with ``chat.update`` instead. Failures end the stream (or replace the placeholder) with
    the specific (or a generic) error message. ``user``: who asked (the stream's recipient)."""
    deps.answered_threads.add((channel, thread_ts))
    deps.unrelated_threads.discard((channel, thread_ts))
    stream = await NativeStream.open(
        deps.partial_client,
        channel=channel,
        thread_ts=thread_ts,
        user=user,
        team=scope.workspace,
        offline=deps.citebot.chat_model is None,
    )
    if stream is None:
        await _answer_with_updates(
            deps, client, scope=scope, channel=channel, thread_ts=thread_ts, options=options, history=history
        )
        return
    try:
        stream.searching(await deps.capacity.questions.run(deps.citebot.count_documents, scope))
        answer = await _ask(deps, scope, options, history, on_partial=stream.partial, on_progress=stream.progress)
    except CitebotError as error:
        await stream.fail(messages.error_text(str(error)))
        return
    except Exception:
        log.exception("answering %r in %s failed", options.question, scope.key)
        await stream.fail(messages.GENERIC_ERROR)
        return
    key = f"{channel}:{stream.ts}"
    tail, more = messages.stream_tail(answer, answer_key=key)
    if not await stream.finish(answer.text, tail, messages.sources_line(answer)):
        more = await _show_final(client, channel, stream.ts, answer, key)
    elif stream.tail_refused:
        more = []  # every source is in the text already
    await _post_more(deps, client, channel, thread_ts, more)


async def _ask(
    deps: Deps,
    scope: Scope,
    options: AskOptions,
    history: list[tuple[str, str]] | None,
    *,
    on_partial: Callable[[str], None],
    on_progress: Callable[[str, Any], None] | None = None,
) -> Answer:
    """``Citebot.ask`` on a question thread (never one indexing uses)."""
    return await deps.capacity.questions.run(
        deps.citebot.ask,
        options.question,
        scope,
        top_k=options.top_k,
        alpha=options.alpha,
        mode=options.mode,
        history=tuple(history or ()),
        on_partial=on_partial,
        on_progress=on_progress,
    )


async def _answer_with_updates(
    deps: Deps,
    client: AsyncWebClient,
    *,
    scope: Scope,
    channel: str,
    thread_ts: str,
    options: AskOptions,
    history: list[tuple[str, str]] | None = None,
) -> None:
    """Post "Thinking…" in the thread, stream the answer into it with throttled ``chat.update``,
    finish with blocks and 👍/👎 (and the sources that did not fit in a follow-up)."""
    placeholder = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=messages.THINKING)
    ts = placeholder["ts"]
    updater = ThrottledUpdater(
        deps.partial_client, channel, ts, deps.stream_interval_s, budget=deps.partials, workspace=scope.workspace
    )
    try:
        answer = await _ask(deps, scope, options, history, on_partial=updater.push)
    except CitebotError as error:
        await updater.close()
        text = messages.error_text(str(error))
        await client.chat_update(
            channel=channel, ts=ts, text=text, blocks=[messages.section(text, f"{messages.ANSWER_BLOCK}-0")]
        )
        return
    except Exception:
        await updater.close()
        log.exception("answering %r in %s failed", options.question, scope.key)
        await client.chat_update(channel=channel, ts=ts, text=messages.GENERIC_ERROR, blocks=[])
        return
    await updater.close()
    more = await _show_final(client, channel, ts, answer, f"{channel}:{ts}")
    await _post_more(deps, client, channel, thread_ts, more)


async def _show_final(
    client: AsyncWebClient, channel: str, ts: str, answer: Any, answer_key: str
) -> list[list[messages.Block]]:
    """Replace message ``ts`` with the whole answer (as text if Slack refuses its blocks); returns
    the follow-up messages holding sources that did not fit."""
    blocks, more = messages.answer_layout(answer, answer_key=answer_key)
    fallback = messages.answer_fallback(answer)
    try:
        await client.chat_update(channel=channel, ts=ts, text=fallback, blocks=blocks)
    except SlackApiError as error:
        if error.response.get("error") not in ("msg_blocks_too_long", "invalid_blocks", "msg_too_long"):
            raise
        log.warning("Slack refused the answer's blocks (%s); sending it as text", error.response.get("error"))
        await client.chat_update(channel=channel, ts=ts, text=fallback, blocks=[])
        return []
    return more


async def _post_more(
    deps: Deps, client: AsyncWebClient, channel: str, thread_ts: str, more: list[list[messages.Block]]
) -> None:
    for extra in more:
        await deps.pacer.wait(channel)
        await client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=messages.more_sources_text(extra), blocks=extra
        )


@dataclass(frozen=True)
class Thread:
    """A thread as the bot needs it: its newest messages, and whether the bot has answered in it."""

    messages: list[dict[str, Any]]
    bot_answered: bool


async def read_thread(client: AsyncWebClient, channel: str, thread_ts: str, *, bot_user_id: str, bot_id: str) -> Thread:
    """conversations.replies, every page (Slack returns the oldest first), keeping the newest
    ``THREAD_KEPT`` messages so that history is the latest turns of a long thread."""
    kept: deque[dict[str, Any]] = deque(maxlen=THREAD_KEPT)
    answered = False
    cursor: str | None = None
    while True:
        page = await client.conversations_replies(channel=channel, ts=thread_ts, limit=THREAD_PAGE, cursor=cursor)
        for m in page.get("messages") or []:
            kept.append(m)
            answered = answered or (_from_bot(m, bot_user_id, bot_id) and messages.is_answer_message(m))
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not page.get("has_more") or not cursor:
            return Thread(list(kept), answered)


def _from_bot(m: dict[str, Any], bot_user_id: str, bot_id: str) -> bool:
    return (bool(bot_id) and m.get("bot_id") == bot_id) or (bool(bot_user_id) and m.get("user") == bot_user_id)


def thread_history(
    thread: list[dict[str, Any]],
    *,
    bot_user_id: str,
    bot_id: str,
    before_ts: str,
    limit: int = HISTORY_TURNS,
) -> list[tuple[str, str]]:
    """(role, text) pairs of a thread before ``before_ts``: the bot's answers as assistant turns,
    its "<@U> asked: …" posts and people's messages as user turns; placeholders skipped."""
    turns: list[tuple[str, str]] = []
    for m in thread:
        if m.get("ts") == before_ts or float(m.get("ts", 0)) > float(before_ts):
            continue
        text = m.get("text") or ""
        from_bot = _from_bot(m, bot_user_id, bot_id)
        if from_bot and messages.is_question_message(m):
            turns.append(("user", plain_text(text.split("asked:", 1)[-1])))
        elif from_bot and messages.is_answer_message(m) and text != messages.THINKING:
            turns.append(("assistant", text))
        elif not from_bot and not m.get("bot_id") and m.get("subtype") in (None, "thread_broadcast") and plain_text(text):
            turns.append(("user", plain_text(text)))
    return turns[-limit:]


def history_before(thread: Thread | None, message: Incoming) -> list[tuple[str, str]]:
    """The conversation in ``thread`` before ``message`` (empty outside a thread)."""
    if thread is None:
        return []
    return thread_history(thread.messages, bot_user_id=message.bot_user_id, bot_id=message.bot_id, before_ts=message.ts)


async def answer_message(deps: Deps, client: AsyncWebClient, message: Incoming, thread: Thread | None) -> None:
    """Answer the question in a message (mention, DM, follow-up) in its thread, with the thread's
    earlier turns as history."""
    if not message.text:
        hint = "Ask me a question after the mention, e.g. `@citebot What optimizer was used?`"
        await client.chat_postMessage(channel=message.channel, thread_ts=message.reply_thread, text=hint)
        return
    history = history_before(thread, message)
    await answer_in_thread(
        deps,
        client,
        scope=message.scope,
        channel=message.channel,
        thread_ts=message.reply_thread,
        options=AskOptions(question=message.text),
        history=history,
        user=message.user,
    )


async def read_thread_of(client: AsyncWebClient, message: Incoming) -> Thread | None:
    """The thread a message was posted in (None for a top-level message)."""
    if message.thread_ts is None:
        return None
    return await read_thread(
        client, message.channel, message.thread_ts, bot_user_id=message.bot_user_id, bot_id=message.bot_id
    )
