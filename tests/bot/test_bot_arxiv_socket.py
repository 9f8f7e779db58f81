"""/arxiv against the stand-in arXiv; Socket Mode round trips; event retries; the serve entry point."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.runner import check_tokens, check_with_slack
from citebot.errors import CitebotError
from citebot.settings import Settings
from tests.bot.harness import USER, Driver, new_channel, share_file, thread_texts, wait_quiet
from tests.paths import NASTY
from tests.standins.slack_server import SlackStandIn


def test_arxiv_ids_are_indexed_with_one_reply_each(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    driver.command("/arxiv", "1111.2011 abc", channel)
    status = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if "arXiv" in m["text"]])[0]
    replies = slack.wait_for(
        lambda: len(thread_texts(slack, channel, status["ts"])) == 2 and thread_texts(slack, channel, status["ts"]),
        timeout=180,
    )
    paper = next(t for t in replies if "1111.2011" not in t[:12])
    assert "Quantum Criticality for Extended Nodes on a Bethe Lattice" in paper and "8 pages" in paper
    assert any(t.startswith(":x: `abc`") for t in replies)
    final = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if "Added 1 of 2" in m["text"]])
    assert final and final[0]["ts"] == status["ts"]
    listing = driver.command("/docs", "", channel)
    shown = slack.wait_for(lambda: driver.responses_for(listing["response_url"]))[0]
    assert "Quantum Criticality" in str(shown["blocks"]) and "arxiv" in str(shown["blocks"])


def test_arxiv_without_ids_shows_usage(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    payload = http.command("/arxiv", "  ", channel)
    assert "Usage" in slack.wait_for(lambda: http.responses_for(payload["response_url"]))[0]["text"]


def test_socket_mode_envelopes_are_acked_at_once_and_answered(socket: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    payload = slack.slash_command("/ask", "What does the paper say about attention?", channel=channel, user=USER)
    envelope = slack.send_envelope("slash_commands", payload)
    ack = slack.wait_ack(envelope)
    assert ack.at - slack.sent[envelope] < 1.0  # acked before any work
    post = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if m.get("bot_id")])[0]
    answer = socket.final_reply(channel, post["ts"])
    assert "couldn't find" in answer["text"]


def test_socket_mode_event_retries_do_no_second_work(socket: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    message, payload = share_file(
        slack, channel, (NASTY / "encrypted_libreoffice-writer-password.pdf").read_bytes(), "secret.pdf"
    )
    for attempt in range(3):
        envelope = slack.send_envelope("events_api", payload, retry_attempt=attempt)
        slack.wait_ack(envelope)
    slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]))
    wait_quiet(slack)
    assert len(thread_texts(slack, channel, message["ts"])) == 1
    assert "password" in thread_texts(slack, channel, message["ts"])[0]


def test_other_bots_are_ignored(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    message = slack.user_message(channel, "U0OTHERBOT", f"<@{slack.state.bot_user_id}> what is attention?")
    payload = slack.message_event(channel, message)
    payload["event"] |= {"bot_id": "B0OTHER", "subtype": "bot_message"}
    http.deliver(payload)
    wait_quiet(slack, 1.0)
    assert slack.thread(channel, message["ts"]) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"slack_bot_token": ""}, "SLACK_BOT_TOKEN is not set"),
        ({"slack_bot_token": "xoxp-user-token"}, "xoxb-"),
        ({"slack_app_token": "xoxb-wrong"}, "xapp-"),
        ({"slack_app_token": "", "slack_signing_secret": ""}, "SLACK_SIGNING_SECRET"),
    ],
)
def test_missing_or_malformed_tokens_are_one_clear_line(bot_settings: Settings, changes: dict, expected: str) -> None:
    with pytest.raises(CitebotError, match=expected) as raised:
        check_tokens(replace(bot_settings, **changes))
    assert "\n" not in str(raised.value)


def test_tokens_slack_rejects_are_reported(bot_settings: Settings, slack: SlackStandIn) -> None:
    with pytest.raises(CitebotError, match=r"Slack rejected SLACK_BOT_TOKEN \(invalid_auth\)"):
        asyncio.run(check_with_slack(replace(bot_settings, slack_bot_token="xoxb-revoked")))
    with pytest.raises(CitebotError, match=r"Slack rejected SLACK_APP_TOKEN \(invalid_auth\)"):
        asyncio.run(check_with_slack(replace(bot_settings, slack_app_token="xapp-revoked")))
    asyncio.run(check_with_slack(replace(bot_settings, slack_app_token=slack.app_token)))  # accepted
    with pytest.raises(CitebotError, match="Cannot reach Slack"):
        asyncio.run(check_with_slack(replace(bot_settings, slack_api_url="http://127.0.0.1:9/api/")))


def test_serve_runs_until_sigterm(bot_settings: Settings, slack: SlackStandIn, tmp_path) -> None:
    """``serve`` (what ``citebot serve`` calls) in its own process: healthy in Socket Mode, exits 0 on SIGTERM."""
    import os
    import signal
    import socket as sockets
    import subprocess
    import sys
    import urllib.request

    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = replace(
        bot_settings,
        slack_app_token=slack.app_token,
        http_port=port,
        data_dir=str(tmp_path),
        collection_prefix="BotTestServe",
    )
    env = {
        **os.environ,
        **{f.metadata["env"]: str(getattr(settings, f.name)) for f in __import__("dataclasses").fields(Settings)},
    }
    code = "from bot.runner import serve; from citebot.settings import Settings; serve(Settings.from_env())"
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    return response.status == 200
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                return False

        slack.wait_for(healthy, timeout=90, interval=0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
