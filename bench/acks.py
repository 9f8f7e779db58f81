"""Section 1: Slack acknowledgement latency, HTTP mode and Socket Mode.

The bot is the real thing: ``citebot serve`` in its own process, configured by environment
variables to use the stand-in Slack (tests/standins/slack_server.py), the bench's Weaviate and
the OpenAI stand-in. This process plays Slack: it sends signed ``/ask`` slash commands and
``message``/``file_share`` events (the real bolt-python payload shape, a small real PDF) at a
steady pace, and measures from request sent to ack received (HTTP: the response to the POST;
Socket Mode: the stand-in's clock from envelope sent to ack frame received). The bot meanwhile
does the real work the requests ask for (answers, one ingest, downloads, Slack API calls).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

from bench.common import PDFS, REPO, TESTDATA, BenchEnv, log, pct
from tests.standins.background import stop_process
from tests.standins.slack_server import SlackStandIn

RATE_PER_S = 20  # requests per second, sent one after another


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def _file_share(slack: Any, channel: str, pdf: bytes) -> dict[str, Any]:
    file = slack.add_file(pdf, "paper.pdf", user="U0BENCH")
    message = slack.user_message(channel, "U0BENCH", "Here is a paper", files=[file])
    payload = json.loads((TESTDATA / "slack" / "message_file_share.bolt-python.json").read_text())
    payload["team_id"] = slack.state.team_id
    payload["authorizations"][0] |= {"team_id": slack.state.team_id, "user_id": slack.state.bot_user_id}
    payload["event_id"] = "Ev" + uuid.uuid4().hex[:10].upper()
    payload["event"] |= {
        "files": [file],
        "user": "U0BENCH",
        "ts": message["ts"],
        "event_ts": message["ts"],
        "channel": channel,
        "text": message["text"],
        "client_msg_id": str(uuid.uuid4()),
    }
    return payload


def _start_bot(env: BenchEnv, slack: Any, socket_mode: bool) -> tuple[subprocess.Popen, str]:
    from citebot.weaviate_server import free_port

    port = free_port()
    settings = env.settings(
        env.prefix("Acks"),
        "standin",
        slack_api_url=slack.api_url,
        slack_bot_token=slack.bot_token,
        http_port=port,
        log_level="WARNING",
        slack_signing_secret="" if socket_mode else slack.signing_secret,
        slack_app_token=slack.app_token if socket_mode else "",
    )
    child_env = env.env_vars(settings)
    child_env["PYTHONPATH"] = str(REPO) + os.pathsep + child_env.get("PYTHONPATH", "")
    log_file = open(env.root / f"bot-{'socket' if socket_mode else 'http'}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"], env=child_env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT
    )
    log_file.close()
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/healthz")
    if socket_mode:
        slack.wait_for(lambda: slack.socket_connected, timeout=30)
    return proc, url


def _measure(slack: Any, socket_mode: bool, url: str, kind: str, n: int, channel: str, pdf: bytes) -> list[float]:
    out: list[float] = []
    interval = 1 / RATE_PER_S
    for i in range(n):
        began = time.monotonic()
        if kind == "ask":
            payload: Any = slack.slash_command(
                "/ask", f"What is the main result of this paper? ({i})", channel=channel, user="U0BENCH"
            )
        else:
            payload = _file_share(slack, channel, pdf)
        if socket_mode:
            envelope = slack.send_envelope("slash_commands" if kind == "ask" else "events_api", payload)
            ack = slack.wait_ack(envelope, timeout=10)
            out.append((ack.at - slack.sent[envelope]) * 1000)
        else:
            status, _, seconds = slack.deliver_http(url + "/slack/events", payload)
            if status != 200:
                raise RuntimeError(f"the bot answered {status} to a signed {kind} request")
            out.append(seconds * 1000)
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
    return out


def run(env: BenchEnv) -> dict[str, Any]:
    n = 20 if env.quick else 200
    pdf = next(p for p in PDFS if p.stem == "1111.2011").read_bytes()  # 8 pages: ingested once, then known
    out: dict[str, Any] = {"rate_per_s": RATE_PER_S, "runs": {}}
    with SlackStandIn() as slack:
        # Hundreds of posts into one channel are beyond Slack's posting limits; this measures acks.
        for method in (
            "chat.postMessage",
            "chat.update",
            "chat.startStream",
            "chat.stopStream",
            "reactions.add",
            "reactions.remove",
        ):
            slack.limit(method, per_minute=60_000, burst=1_000)
        for socket_mode in (False, True):
            mode = "Socket Mode" if socket_mode else "HTTP"
            log(f"acks: starting `citebot serve` in {mode}")
            proc, url = _start_bot(env, slack, socket_mode)
            try:
                channel = "C" + uuid.uuid4().hex[:9].upper()
                slack.add_channel(channel)
                _measure(slack, socket_mode, url, "ask", 5, channel, pdf)  # warm-up, not counted
                for kind, label in (("file_share", "file_share event"), ("ask", "/ask command")):
                    times = _measure(slack, socket_mode, url, kind, n, channel, pdf)
                    row = {
                        "n": len(times),
                        "p50_ms": round(pct(times, 50), 2),
                        "p99_ms": round(pct(times, 99), 2),
                        "max_ms": round(max(times), 2),
                    }
                    out["runs"][f"{mode}, {label}"] = row
                    log(f"  {mode} {label}: {row}")
            finally:
                stop_process(proc)
    return out
