"""Section: one busy workload never stalls another (questions while ingestion is saturated).

The bot is the real thing: ``citebot serve`` (HTTP mode) in its own process with the default
capacity settings, against the stand-in Slack (in this process), the bench's Weaviate and the
OpenAI stand-in (embeddings and streamed answers). One paper is indexed in a "quiet" channel.
Then ``/ask`` latency, from the slash command sent to the final answer visible in Slack, is
measured twice: with ingestion idle, and while a "busy" channel has several copies of the
352-page book being indexed and more waiting (each copy differs by a trailing comment, so each
is a full ingest). During the flood a normal paper shared in the quiet channel is timed too:
it should wait for one slot, not for the whole flood.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.acks import _file_share, _start_bot
from bench.common import BOOK, PDFS, BenchEnv, log, pct
from tests.standins.background import stop_process
from tests.standins.slack_server import SlackStandIn


def _replies(slack: Any, channel: str, ts: str) -> list[str]:
    return [m["text"] for m in slack.thread(channel, ts) if m.get("bot_id")]


def _indexed(slack: Any, channel: str, ts: str) -> bool:
    return any("Indexed" in t or "already indexed" in t for t in _replies(slack, channel, ts))


def _share(slack: Any, url: str, channel: str, pdf: bytes) -> str:
    payload = _file_share(slack, channel, pdf)
    status, _, _ = slack.deliver_http(url + "/slack/events", payload)
    if status != 200:
        raise RuntimeError(f"the bot answered {status} to a file share")
    return str(payload["event"]["ts"])


def _ask(slack: Any, url: str, channel: str, question: str) -> float:
    """Seconds from the /ask command to its final answer in the thread."""
    began = time.monotonic()
    status, _, _ = slack.deliver_http(url + "/slack/events", slack.slash_command("/ask", question, channel=channel))
    if status != 200:
        raise RuntimeError(f"the bot answered {status} to /ask")

    def answered() -> bool:
        asked = [m for m in slack.channel_messages(channel) if m.get("bot_id") and question in m["text"]]
        replies = _replies(slack, channel, asked[-1]["ts"]) if asked else []
        return bool(replies) and "Thinking" not in replies[-1] and "▍" not in replies[-1]

    slack.wait_for(answered, timeout=120, interval=0.01)
    return time.monotonic() - began


def _latencies(slack: Any, url: str, channel: str, n: int, label: str) -> list[float]:
    out = []
    for i in range(n):
        out.append(_ask(slack, url, channel, f"What is the main result of this paper? ({label} {i})"))
        time.sleep(0.2)
    return out


class _Watch:
    """Polls ``done`` in a thread from now on: ``seconds`` is when it first held (from now), and
    ``then`` what ``snapshot`` returned at that moment; measured while the main thread does other
    work (the latency loop), so the time is the event's, not the end of the loop's."""

    def __init__(self, done: Callable[[], bool], snapshot: Callable[[], Any] = lambda: None) -> None:
        self.began = time.monotonic()
        self.seconds: float | None = None
        self.then: Any = None
        self._done, self._snapshot = done, snapshot
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while time.monotonic() - self.began < 1800:
            if self._done():
                self.seconds, self.then = time.monotonic() - self.began, self._snapshot()
                return
            time.sleep(0.05)

    def wait(self) -> float:
        self._thread.join()
        if self.seconds is None:
            raise TimeoutError("not done within 30 minutes")
        return self.seconds


def _row(times: list[float]) -> dict[str, Any]:
    return {
        "n": len(times),
        "p50_s": round(pct(times, 50), 3),
        "p95_s": round(pct(times, 95), 3),
        "max_s": round(max(times), 3),
    }


def run(env: BenchEnv) -> dict[str, Any]:
    n = 10 if env.quick else 30
    books = 5 if env.quick else 8  # enough that the flood outlasts the measurement
    paper = next(p for p in PDFS if p.stem == "1111.2011").read_bytes()
    second = next(p for p in PDFS if p.stem == "2004.04906").read_bytes()
    book = BOOK.read_bytes()
    out: dict[str, Any] = {"books": books}
    with SlackStandIn() as slack:
        # Dozens of asks into one channel within seconds are beyond Slack's posting limits (about one
        # message a second per channel); lifted here, so the figures are the bot's, not the limits'.
        for method in ("chat.postMessage", "chat.update", "reactions.add", "reactions.remove"):
            slack.limit(method, per_minute=60_000, burst=1_000)
        log("isolation: starting `citebot serve` (HTTP mode, default capacity settings)")
        proc, url = _start_bot(env, slack, socket_mode=False)
        try:
            quiet, busy = ("C" + uuid.uuid4().hex[:9].upper() for _ in range(2))
            slack.add_channel(quiet)
            slack.add_channel(busy)
            ts = _share(slack, url, quiet, paper)
            slack.wait_for(lambda: _indexed(slack, quiet, ts), timeout=300)
            _latencies(slack, url, quiet, 3, "warm-up")
            idle = _latencies(slack, url, quiet, n, "idle")
            out["idle"] = _row(idle)
            log(f"  /ask with ingestion idle: {out['idle']}")

            flood = [_share(slack, url, busy, book + f"\n%variant {i} {uuid.uuid4().hex}\n".encode()) for i in range(books)]
            slack.wait_for(lambda: len([t for t in flood if _replies(slack, busy, t)]) >= books - 2, timeout=60)
            time.sleep(3)  # the first books are past their quick phase and parsing
            second_ts = _share(slack, url, quiet, second)

            def books_done() -> int:
                return sum(_indexed(slack, busy, t) for t in flood)

            second_indexed = _Watch(lambda: _indexed(slack, quiet, second_ts), books_done)
            flood_indexed = _Watch(lambda: books_done() == books)
            saturated = _latencies(slack, url, quiet, n, "saturated")
            out["saturated"] = _row(saturated)
            out["books_indexed_during_measurement"] = done = sum(_indexed(slack, busy, t) for t in flood)
            out["saturated_throughout"] = done < books - 1  # at least two books still in progress at the end
            log(f"  /ask with {books} books being indexed: {out['saturated']}")
            out["other_channel_share_s"] = round(second_indexed.wait(), 1)
            out["books_indexed_before_it"] = second_indexed.then
            note = (_replies(slack, quiet, second_ts) or [""])[0]
            out["other_channel_share_note"] = note[:200]
            log(f"  a paper shared in another channel meanwhile: indexed after {out['other_channel_share_s']} s")
            out["flood_s"] = round(flood_indexed.wait(), 1)
            out["ratio_p95"] = round(out["saturated"]["p95_s"] / out["idle"]["p95_s"], 2)
        finally:
            stop_process(proc)
    return out
