"""The bot against the stand-in Slack, a real Weaviate and the stand-in arXiv, in both modes.

The bot runs exactly as in production (``bot.runner.BotServer``) on its own event loop in a
background thread; tests play Slack's part through ``SlackStandIn`` and assert on what a user
would see there (messages in threads, reactions, ephemeral responses).
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bot.runner import BotServer
from citebot.settings import Settings
from dataflows.app import Citebot
from tests.paths import PDFS, SLACK
from tests.standins.arxiv_server import ArxivStandin
from tests.standins.slack_server import SlackStandIn

SLACK_DATA = SLACK
ATTENTION = PDFS / "1706.03762.pdf"
USER = "U0USER1"


class BotThread:
    """A ``BotServer`` on a private event loop in a daemon thread."""

    def __init__(self, server: BotServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bot-under-test", daemon=True)

    def start(self) -> BotThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=30)
        assert self.server.deps is not None
        self.server.deps.file_shared_grace_s = 0.3
        return self

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(grace_s=20), self.loop).result(timeout=40)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return self.server.url


@dataclass
class Driver:
    """Play Slack: deliver events, slash commands and clicks to the bot in either mode."""

    slack: SlackStandIn
    bot: BotThread
    mode: str  # "http" | "socket"

    @property
    def events_url(self) -> str:
        return self.bot.url + "/slack/events"

    def deliver(self, payload: dict[str, Any], *, retry: int | None = None) -> None:
        """An Events API payload; Slack needs the ack within 3 seconds."""
        if self.mode == "http":
            status, _, seconds = self.slack.deliver_http(self.events_url, payload, retry_num=retry)
            assert status == 200 and seconds < 3, (status, seconds)
        else:
            envelope = self.slack.send_envelope("events_api", payload, retry_attempt=retry or 0)
            self.slack.wait_ack(envelope)

    def command(self, command: str, text: str, channel: str, user: str = USER) -> dict[str, str]:
        payload = self.slack.slash_command(command, text, channel=channel, user=user)
        if self.mode == "http":
            status, body, seconds = self.slack.deliver_http(self.events_url, payload)
            assert status == 200 and seconds < 3, (status, body, seconds)
        else:
            self.slack.wait_ack(self.slack.send_envelope("slash_commands", payload))
        return payload

    def click(self, payload: dict[str, Any]) -> None:
        if self.mode == "http":
            status, _, seconds = self.slack.deliver_http(self.events_url, {"payload": json.dumps(payload)})
            assert status == 200 and seconds < 3
        else:
            self.slack.wait_ack(self.slack.send_envelope("interactive", payload))

    # --- what users see ---------------------------------------------------------------------
    def final_reply(self, channel: str, thread_ts: str, timeout: float = 120) -> dict[str, Any]:
        """The bot's last reply in a thread once it is no longer a placeholder."""

        def done() -> dict[str, Any] | None:
            replies = [m for m in self.slack.thread(channel, thread_ts) if m.get("bot_id")]
            last = replies[-1] if replies else None
            if (
                last
                and "Thinking" not in last["text"]
                and "▍" not in last["text"]
                and last.get("stream_state") != "streaming"
            ):
                return last
            return None

        return self.slack.wait_for(done, timeout=timeout)

    def responses_for(self, response_url: str) -> list[dict[str, Any]]:
        path = response_url.split("127.0.0.1", 1)[1].split("/", 1)[1]
        return [r for r in self.slack.responses if r.get("path", "").lstrip("/") == path]


def forget_confirmed(driver: Driver, slack: SlackStandIn, text: str, channel: str, user: str = USER) -> dict[str, Any]:
    """`/forget text`, then a click on Remove in the confirmation: the in-channel "Removed" reply
    (or the first reply, when there is nothing to confirm)."""
    from bot import messages

    command = driver.command("/forget", text, channel, user=user)
    prompt = slack.wait_for(lambda: driver.responses_for(command["response_url"]), timeout=60)[0]
    if not prompt.get("text", "").startswith("Remove "):
        return prompt
    payload = slack.click_ephemeral(prompt, messages.FORGET_CONFIRM)
    driver.click(payload)
    replies = slack.wait_for(lambda: (r := driver.responses_for(payload["response_url"])) and len(r) >= 2 and r, timeout=60)
    return replies[1]


def new_channel(slack: SlackStandIn, prefix: str = "C", *, member: bool = True) -> str:
    channel = prefix + uuid.uuid4().hex[:9].upper()
    slack.add_channel(channel, member=member)
    return channel


def share_file(
    slack: SlackStandIn, channel: str, content: bytes, name: str, **kw: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Upload + share in ``channel``: returns (stored message, message/file_share event payload).

    The event is the real bolt-python test payload (message_file_share.bolt-python.json) with
    ids, channel and file object replaced by the stand-in's.
    """
    file = slack.add_file(content, name, user=USER, **kw)
    message = slack.user_message(channel, USER, "Here is a paper", files=[file])
    payload = json.loads((SLACK_DATA / "message_file_share.bolt-python.json").read_text())
    payload["team_id"] = slack.state.team_id
    payload["authorizations"][0] |= {"team_id": slack.state.team_id, "user_id": slack.state.bot_user_id}
    payload["event_id"] = "Ev" + uuid.uuid4().hex[:10].upper()
    payload["event"] |= {
        "files": [file],
        "user": USER,
        "ts": message["ts"],
        "event_ts": message["ts"],
        "channel": channel,
        "text": message["text"],
        "client_msg_id": str(uuid.uuid4()),
    }
    return message, payload


def thread_texts(slack: SlackStandIn, channel: str, ts: str) -> list[str]:
    return [m["text"] for m in slack.thread(channel, ts)]


def wait_quiet(slack: SlackStandIn, seconds: float = 1.5) -> None:
    """Let in-flight work (if any) finish before asserting that nothing more happened."""
    last = -1
    while last != len(slack.api_calls):
        last = len(slack.api_calls)
        time.sleep(seconds)


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as server:
        yield server


@pytest.fixture(scope="session")
def bot_settings(base_settings: Settings, slack: SlackStandIn, arxiv_standin: ArxivStandin) -> Settings:
    return replace(
        base_settings,
        slack_api_url=slack.api_url,
        slack_bot_token=slack.bot_token,
        slack_signing_secret=slack.signing_secret,
        slack_app_token="",
        collection_prefix="BotTest",
        arxiv_api_url=arxiv_standin.url + "/api/query",
        arxiv_pdf_url=arxiv_standin.url + "/pdf/{id}",
        arxiv_abs_url=arxiv_standin.url + "/abs/{id}",
        download_timeout_s=20.0,
    )


@pytest.fixture(scope="session")
def citebot(bot_settings: Settings) -> Iterator[Citebot]:
    bot = Citebot(bot_settings)
    yield bot
    bot.close()


@pytest.fixture(scope="session")
def http_bot(bot_settings: Settings, citebot: Citebot) -> Iterator[BotThread]:
    bot = BotThread(BotServer(bot_settings, citebot, host="127.0.0.1", port=0)).start()
    yield bot
    bot.stop()


@pytest.fixture(scope="session")
def socket_bot(bot_settings: Settings, citebot: Citebot, slack: SlackStandIn) -> Iterator[BotThread]:
    settings = replace(bot_settings, slack_app_token=slack.app_token, slack_signing_secret="")
    bot = BotThread(BotServer(settings, citebot, host="127.0.0.1", port=0)).start()
    slack.wait_for(lambda: slack.socket_connected, timeout=10)
    yield bot
    bot.stop()


@pytest.fixture(params=["http", "socket"])
def driver(request: pytest.FixtureRequest, slack: SlackStandIn) -> Driver:
    bot = request.getfixturevalue(f"{request.param}_bot")
    return Driver(slack, bot, request.param)


@pytest.fixture
def http(slack: SlackStandIn, http_bot: BotThread) -> Driver:
    return Driver(slack, http_bot, "http")


@pytest.fixture
def socket(slack: SlackStandIn, socket_bot: BotThread) -> Driver:
    return Driver(slack, socket_bot, "socket")


def one_page_pdf(text: str | list[str]) -> bytes:
    """A minimal, valid one-page PDF showing ``text`` (Helvetica; wrapped at 80 characters, or the given lines)."""
    raw = textwrap.wrap(text, 80) if isinstance(text, str) else text
    lines = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in raw]
    stream = "BT /F1 11 Tf 50 750 Td 14 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def bot_posts(slack: SlackStandIn, channel: str) -> list[dict[str, Any]]:
    """Every chat.postMessage the bot made in ``channel`` (successful or not)."""
    return [c for c in slack.calls("chat.postMessage") if c.args.get("channel") == channel]
