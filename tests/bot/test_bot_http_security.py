"""HTTP mode: only requests signed with the signing secret, and fresh, are handled."""

from __future__ import annotations

import json
import urllib.request

from slack_sdk.signature import Clock, SignatureVerifier

from bot.runner import BotServer
from citebot.settings import Settings
from dataflows.app import Citebot
from tests.bot.harness import SLACK_DATA, BotThread, Driver, new_channel
from tests.standins.slack_server import SlackStandIn

VECTOR_BODY = (SLACK_DATA / "slash_command.signed.python-slack-sdk.txt").read_text()
VECTOR = json.loads((SLACK_DATA / "slash_command.signed.headers.json").read_text())


class FrozenClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def _post_vector(slack: SlackStandIn, url: str, signature: str | None = None, body: str = VECTOR_BODY) -> int:
    headers = {
        "X-Slack-Request-Timestamp": VECTOR["X-Slack-Request-Timestamp"],
        "X-Slack-Signature": signature or VECTOR["X-Slack-Signature"],
    }
    status, _, _ = slack.deliver_http(url, body, headers=headers, signed=False)
    return status


def test_the_vector_is_a_valid_signature() -> None:
    verifier = SignatureVerifier(VECTOR["signing_secret"], clock=FrozenClock(int(VECTOR["X-Slack-Request-Timestamp"]) + 1))
    assert verifier.is_valid(VECTOR_BODY, VECTOR["X-Slack-Request-Timestamp"], VECTOR["X-Slack-Signature"])


def test_stale_or_forged_requests_get_401_and_do_nothing(http: Driver, slack: SlackStandIn) -> None:
    assert slack.signing_secret == VECTOR["signing_secret"]
    before = len(slack.requests)
    url = http.events_url
    assert _post_vector(slack, url) == 401  # valid signature, but from 2018: replay refused
    assert _post_vector(slack, url, signature="v0=" + "0" * 64) == 401
    assert _post_vector(slack, url, body=VECTOR_BODY.replace("roadrunner", "wile-e-coyote")) == 401
    status, _, _ = slack.deliver_http(url, slack.slash_command("/ask", "hi", channel="C1"), signed=False)
    assert status == 401
    forged = slack.sign(VECTOR_BODY, secret="not-the-secret")
    status, _, _ = slack.deliver_http(url, VECTOR_BODY, headers=forged, signed=False)
    assert status == 401
    assert len(slack.requests) == before  # not even auth.test: nothing ran


def test_signed_vector_passes_verification_with_its_own_clock(
    bot_settings: Settings,
    citebot: Citebot,
    slack: SlackStandIn,
) -> None:
    clock = FrozenClock(int(VECTOR["X-Slack-Request-Timestamp"]) + 30)
    bot = BotThread(BotServer(bot_settings, citebot, host="127.0.0.1", port=0, clock=clock)).start()
    try:
        status = _post_vector(slack, bot.url + "/slack/events")
        # Verified, then routed: /webhook-collect is not one of our commands (bolt answers 404).
        assert status == 404
        assert _post_vector(slack, bot.url + "/slack/events", signature="v0=" + "1" * 64) == 401
    finally:
        bot.stop()


def test_fresh_signed_command_is_acked_fast(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    payload = http.command("/ask", "", channel)  # empty question: usage, ephemerally
    usage = slack.wait_for(lambda: http.responses_for(payload["response_url"]))
    assert "Usage" in usage[0]["text"] and usage[0]["response_type"] == "ephemeral"
    assert slack.channel_messages(channel) == []


def test_healthz(http: Driver) -> None:
    with urllib.request.urlopen(http.bot.url + "/healthz", timeout=5) as response:
        body = json.loads(response.read())
    assert response.status == 200 and body["ok"] and body["mode"] == "http"
