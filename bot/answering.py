"""Answer a question in a Slack thread: placeholder → streamed partial text → final Block Kit answer.

Used by /ask and by mentions; this is where a question becomes ``Citebot.ask`` (in a worker thread).
"""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import Deps, log
from citebot.domain import Mode, Scope
from citebot.errors import CitebotError


class UsageError(ValueError):
    """The request cannot be understood; ``str()`` is a usage hint for the user."""


@dataclass(frozen=True)
class AskOptions:
    question: str
    top_k: int | None = None
    alpha: float | None = None
    mode: Mode = "answer"


def parse_ask(text: str) -> AskOptions:
    """``[--top-k N] [--alpha X] [--summary] question`` (options anywhere; quotes allowed)."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    top_k: int | None = None
    alpha: float | None = None
    mode: Mode = "answer"
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, _, inline = word.partition("=")
        if name in ("--top-k", "--alpha"):
            value = inline or (words[i + 1] if i + 1 < len(words) else "")
            i += 1 if inline else 2
            try:
                if name == "--top-k":
                    top_k = int(value)
                    if not 1 <= top_k <= 50:
                        raise ValueError
                else:
                    alpha = float(value)
                    if not 0.0 <= alpha <= 1.0:
                        raise ValueError
            except ValueError:
                wanted = "a whole number from 1 to 50" if name == "--top-k" else "a number from 0 to 1"
                raise UsageError(f"`{name}` needs {wanted}.\n{messages.ASK_USAGE}") from None
            continue
        if word == "--summary":
            mode = "summary"
        elif word.startswith("--") and len(word) > 2:
            raise UsageError(f"Unknown option `{word}`.\n{messages.ASK_USAGE}")
        else:
            rest.append(word)
        i += 1
    question = " ".join(rest).strip()
    if not question and mode == "answer":
        raise UsageError(messages.ASK_USAGE)
    return AskOptions(question=question or "Summarise the documents in this channel.", top_k=top_k, alpha=alpha, mode=mode)


class ThrottledUpdater:
    """Bridge ``on_partial`` (called in the worker thread) to ``chat.update`` at most once per interval."""

    def __init__(self, client: AsyncWebClient, channel: str, ts: str, interval_s: float) -> None:
        self._client, self._channel, self._ts, self._interval = client, channel, ts, interval_s
        self._loop = asyncio.get_running_loop()
        self._latest: str | None = None
        self._wake = asyncio.Event()
        self._done = False
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
                sent = text
                try:
                    await self._client.chat_update(channel=self._channel, ts=self._ts, text=messages.partial_text(text))
                except Exception as error:  # a lost partial update is harmless; the final one matters
                    log.warning("partial update failed: %s", error)
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        self._done = True
        self._wake.set()
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
) -> None:
    """Post "Thinking…" in the thread, stream the answer into it, finish with blocks and 👍/👎.

    Failures replace the placeholder with the specific (or a generic) error message.
    """
    placeholder = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=messages.THINKING)
    ts = placeholder["ts"]
    deps.answered_threads.add((channel, thread_ts))
    updater = ThrottledUpdater(client, channel, ts, deps.stream_interval_s)
    try:
        answer = await asyncio.to_thread(
            deps.citebot.ask,
            options.question,
            scope,
            top_k=options.top_k,
            alpha=options.alpha,
            mode=options.mode,
            history=tuple(history or ()),
            on_partial=updater.push,
        )
    except CitebotError as error:
        await updater.close()
        await client.chat_update(
            channel=channel,
            ts=ts,
            text=messages.error_text(str(error)),
            blocks=[messages.section(messages.error_text(str(error)), f"{messages.ANSWER_BLOCK}-0")],
        )
        return
    except Exception:
        await updater.close()
        log.exception("answering %r in %s failed", options.question, scope.key)
        await client.chat_update(channel=channel, ts=ts, text=messages.GENERIC_ERROR, blocks=[])
        return
    await updater.close()
    await client.chat_update(
        channel=channel,
        ts=ts,
        text=messages.answer_fallback(answer),
        blocks=messages.answer_blocks(answer, answer_key=f"{channel}:{ts}"),
    )


def strip_mentions(text: str) -> str:
    """The text without any ``<@U…>`` mention tokens."""
    return re.sub(r"<@[A-Z0-9]+(\|[^>]*)?>", "", text or "").strip()


def thread_history(
    thread: list[dict[str, Any]],
    *,
    bot_user_id: str,
    bot_id: str,
    before_ts: str,
    limit: int = 12,
) -> list[tuple[str, str]]:
    """(role, text) pairs of a thread before ``before_ts``: the bot's answers as assistant turns,
    its "<@U> asked: …" posts and people's messages as user turns; placeholders skipped."""
    turns: list[tuple[str, str]] = []
    for m in thread:
        if m.get("ts") == before_ts or float(m.get("ts", 0)) > float(before_ts):
            continue
        text = m.get("text") or ""
        from_bot = m.get("bot_id") == bot_id or m.get("user") == bot_user_id
        if from_bot and messages.is_question_message(m):
            turns.append(("user", text.split("asked:", 1)[-1].strip()))
        elif from_bot and messages.is_answer_message(m) and text != messages.THINKING:
            turns.append(("assistant", text))
        elif not from_bot and not m.get("bot_id") and strip_mentions(text):
            turns.append(("user", strip_mentions(text)))
    return turns[-limit:]
