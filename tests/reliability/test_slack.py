"""The bot under load and attack, through the stand-in Slack (HTTP mode and Socket Mode).

Reuses tests/bot's helpers (tests/bot/harness.py: ``BotThread``, ``Driver``, ``share_file`` …) but runs its own Slack
stand-in, bot servers and collection prefix, with the stand-in OpenAI server as the model (fast
embeddings, streamed answers), so nothing here disturbs tests/bot and vice versa.

Covered in tests/bot already, so not repeated here: forged / stale HTTP signatures
(test_bot_http_security.py::test_stale_or_forged_requests_get_401_and_do_nothing), Socket Mode
replays of a slash command (test_bot_ask.py::test_replayed_command_answers_once), event retries
(test_bot_arxiv_socket.py::test_socket_mode_event_retries_do_no_second_work), a URL in the text
of a file share without a download URL (test_bot_files.py::test_urls_in_message_text_are_never_fetched)
and mentions/broadcasts in model output (test_bot_streaming.py).
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from bot import messages
from bot.runner import BotServer
from citebot.settings import Settings
from dataflows.app import Citebot
from tests.bot.harness import USER, BotThread, Driver, new_channel, share_file, thread_texts, wait_quiet
from tests.paths import NASTY, PDFS, REPO
from tests.standins.background import BackgroundServer, Fault, FaultQueue, Recorded, recording_middleware, stop_process
from tests.standins.settings import with_standins
from tests.standins.slack_server import SlackStandIn

BOT_TOKEN = "xoxb-7731-9902-reliabilityBOTtokenZq81"
APP_TOKEN = "xapp-1-A111-4242-reliabilityAPPtokenKw27"
SIGNING_SECRET = "reliab1signing5ecretf00d4c0ffee77"
OPENAI_KEY = "sk-reliability-OPENAIkey-6d1f0e9b"
SECRETS = {"bot token": BOT_TOKEN, "app token": APP_TOKEN, "signing secret": SIGNING_SECRET, "OpenAI key": OPENAI_KEY}

QUESTIONS = [
    "What optimizer was used to train the Transformer?",
    "How many attention heads does multi-head attention use?",
    "What is the dimensionality of the model and of the inner feed-forward layer?",
    "Which BLEU score did the big Transformer reach on English-to-German?",
    "What learning rate schedule with warmup steps was used?",
    "How is scaled dot-product attention computed?",
    "What regularization, such as dropout and label smoothing, was applied?",
    "How are positional encodings defined with sine and cosine?",
    "How long did training take on the eight P100 GPUs?",
    "Why is self-attention faster than recurrent layers?",
]


# --- the bot under test ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def settings(base_settings: Settings, openai_standin, slack: SlackStandIn) -> Settings:
    return replace(
        with_standins(base_settings, openai=openai_standin, collection_prefix="RelSlack"),
        openai_api_key=OPENAI_KEY,
        slack_api_url=slack.api_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token="",
        download_timeout_s=20.0,
    )


@pytest.fixture(scope="module")
def citebot(settings: Settings) -> Iterator[Citebot]:
    bot = Citebot(settings)
    yield bot
    bot.close()


@pytest.fixture(scope="module")
def http_bot(settings: Settings, citebot: Citebot) -> Iterator[BotThread]:
    bot = BotThread(BotServer(settings, citebot, host="127.0.0.1", port=0)).start()
    bot.server.deps.stream_interval_s = 0.3
    yield bot
    bot.stop()


@pytest.fixture(scope="module")
def socket_bot(settings: Settings, citebot: Citebot, slack: SlackStandIn) -> Iterator[BotThread]:
    bot = BotThread(
        BotServer(replace(settings, slack_app_token=APP_TOKEN, slack_signing_secret=""), citebot, host="127.0.0.1", port=0)
    ).start()
    bot.server.deps.stream_interval_s = 0.3
    slack.wait_for(lambda: slack.socket_connected, timeout=10)
    yield bot
    bot.stop()


@pytest.fixture(scope="module")
def http(slack: SlackStandIn, http_bot: BotThread) -> Driver:
    return Driver(slack, http_bot, "http")


@pytest.fixture(scope="module")
def socket(slack: SlackStandIn, socket_bot: BotThread) -> Driver:
    return Driver(slack, socket_bot, "socket")


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here runs with all loggers at DEBUG; the secrets test greps what they wrote."""
    caplog.set_level(logging.DEBUG)
    yield
    _LOG_TEXT.append(caplog.text)


_LOG_TEXT: list[str] = []


def _index(
    driver: Driver, channel: str, pdf: bytes, name: str, *, channel_type: str = "channel", timeout: float = 120
) -> str:
    """Share a PDF in ``channel`` and wait for the bot's reply in the file's thread."""
    message, payload = share_file(driver.slack, channel, pdf, name)
    payload["event"]["channel_type"] = channel_type
    driver.deliver(payload)
    replies = driver.slack.wait_for(
        lambda: [t for t in thread_texts(driver.slack, channel, message["ts"]) if t != message["text"]], timeout=timeout
    )
    assert "pages" in replies[0], replies
    return replies[0]


def _feedback_value(message: dict[str, Any]) -> dict[str, Any]:
    feedback = [b for b in message.get("blocks") or [] if b.get("block_id") == messages.FEEDBACK_BLOCK]
    return messages.feedback_of(feedback[-1]) if feedback else {}


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


# --- load ------------------------------------------------------------------------------------------
def test_load_50_concurrent_asks_and_5_pdf_shares(
    http: Driver, socket: Driver, slack: SlackStandIn, figures, request: pytest.FixtureRequest
) -> None:
    channel = new_channel(slack)
    _index(http, channel, (PDFS / "1706.03762.pdf").read_bytes(), "attention.pdf")
    # 100 posts and 50 final edits in one channel within seconds are beyond Slack's limits (~1 post a
    # second per channel, Tier 3 chat.update); this test measures the bot's own concurrency, so the
    # stand-in's budgets are lifted here (tests/bot/test_bot_slack_rules.py holds the bot to them).
    for method in ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream"):
        slack.limit(method, per_minute=60_000, burst=1_000)
    request.addfinalizer(slack.reset_limits)
    calls_before = len(slack.api_calls)
    asks = [(f"{QUESTIONS[i % len(QUESTIONS)]} (load-{i:02d})", http if i % 2 == 0 else socket) for i in range(50)]
    shares = [
        (name, http if i % 2 == 0 else socket, new_channel(slack))
        for i, name in enumerate(("1810.04805", "1512.03385", "1412.6980", "1301.3781", "2004.04906"))
    ]
    share_msgs: dict[str, dict[str, Any]] = {}

    def ask(question: str, driver: Driver) -> float:
        payload = slack.slash_command("/ask", question, channel=channel, user=USER)
        if driver.mode == "http":
            status, body, seconds = slack.deliver_http(driver.events_url, payload)
            assert status == 200, (status, body)
            return seconds
        envelope = slack.send_envelope("slash_commands", payload)
        ack = slack.wait_ack(envelope, timeout=10)
        return ack.at - slack.sent[envelope]

    def share(name: str, driver: Driver, where: str) -> float:
        message, payload = share_file(slack, where, (PDFS / f"{name}.pdf").read_bytes(), f"{name}.pdf")
        share_msgs[name] = message
        if driver.mode == "http":
            status, _, seconds = slack.deliver_http(driver.events_url, payload)
            assert status == 200
            return seconds
        envelope = slack.send_envelope("events_api", payload)
        ack = slack.wait_ack(envelope, timeout=10)
        return ack.at - slack.sent[envelope]

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=55) as pool:
        share_futures = [pool.submit(share, *s) for s in shares]
        ask_futures = [pool.submit(ask, *a) for a in asks]
        acks = [f.result() for f in ask_futures + share_futures]

    # every /ask: exactly one "asked:" post, exactly one final answer in *its* thread, for *its* question
    def all_answered() -> bool:
        posts = [m for m in slack.channel_messages(channel) if "(load-" in m.get("text", "") and "asked:" in m["text"]]
        if len(posts) < 50:
            return False
        return all(
            any(
                m.get("bot_id")
                and m["ts"] != p["ts"]
                and "Thinking" not in m["text"]
                and "▍" not in m["text"]
                and _feedback_value(m)
                for m in slack.thread(channel, p["ts"])
            )
            for p in posts
        )

    slack.wait_for(all_answered, timeout=240)
    for name, _, where in shares:
        slack.wait_for(lambda: [t for t in thread_texts(slack, where, share_msgs[name]["ts"]) if "pages" in t], timeout=240)
    elapsed = time.perf_counter() - began
    wait_quiet(slack, 1.0)

    wrong_thread = errors = grounded = 0
    problems: list[str] = []
    posts = [m for m in slack.channel_messages(channel) if "(load-" in m.get("text", "") and "asked:" in m["text"]]
    assert len(posts) == 50, len(posts)
    for post in posts:
        marker = post["text"].split("(load-")[1][:2]
        replies = [m for m in slack.thread(channel, post["ts"]) if m.get("bot_id") and m["ts"] != post["ts"]]
        assert len(replies) == 1, [r["text"][:80] for r in replies]
        value = _feedback_value(replies[0])
        wrong_thread += f"(load-{marker})" not in value.get("q", "") or value.get("k") != f"{channel}:{replies[0]['ts']}"
        grounded += "Sources" in json.dumps(replies[0]["blocks"], ensure_ascii=False)
        if ":warning:" in replies[0]["text"] or ":x:" in replies[0]["text"] or not value:
            errors += 1
            problems.append(f"{post['text'][:90]!r} -> {replies[0]['text'][:200]!r}")
    # every message the bot posted in the channel is accounted for: 50 "asked:", 50 answers, 1 ingest reply
    stray = len(slack.bot_messages(channel)) - 50 - 50 - 1
    for name, _, where in shares:
        texts = [t for t in thread_texts(slack, where, share_msgs[name]["ts"]) if t != share_msgs[name]["text"]]
        if len(texts) != 1 or "pages" not in texts[0]:
            errors += 1
            problems.append(f"{name}: {texts}")
    failed_calls = [c for c in slack.api_calls[calls_before:] if not c.response.get("ok")]
    p99, p50 = _p99(acks), statistics.median(acks)
    figures.record(
        "load",
        concurrent_asks=50,
        concurrent_pdf_shares=5,
        modes="half HTTP, half Socket Mode",
        answered=f"{len(posts) - errors}/50 asks, 5/5 PDFs",
        errors=errors,
        answers_with_sources=grounded,
        wrong_thread_replies=wrong_thread,
        stray_replies=stray,
        ack_p50_ms=round(p50 * 1000, 1),
        ack_p99_ms=round(p99 * 1000, 1),
        ack_max_ms=round(max(acks) * 1000, 1),
        seconds_until_all_answered=round(elapsed, 1),
        slack_api_calls=len(slack.api_calls) - calls_before,
        slack_api_calls_failed=len(failed_calls),
    )
    assert errors == 0 and wrong_thread == 0 and stray == 0, problems
    # (how many answers have sources is recorded, not asserted: "couldn't find" is an answer too, and
    # with the stand-in embedder some questions fall under min_relevance)
    assert not failed_calls, [(c.method, c.response.get("error")) for c in failed_calls[:5]]
    assert p99 < 3.0, p99


# --- isolation -------------------------------------------------------------------------------------
PLACES = {  # place: (channel id prefix, channel_type, paper, a question about it)
    "public": ("C", "channel", "1706.03762", "What optimizer was used to train the Transformer?"),
    "private": ("G", "group", "1810.04805", "What are the masked LM and next sentence prediction tasks?"),
    "dm": ("D", "im", "1512.03385", "How deep were the residual networks on ImageNet?"),
}


def _shown_by_bot(slack: SlackStandIn, channel: str, response_paths: set[str]) -> str:
    """Everything the bot showed in ``channel`` (messages, threads, ephemeral responses) except the
    echo of the user's own question ("<@U> asked: …" and the question kept in the 👍/👎 buttons)."""
    shown = []
    for m in slack.bot_messages(channel):
        if "asked:" in m["text"]:
            continue
        blocks = [b for b in m.get("blocks") or [] if b.get("type") not in ("actions", "context_actions")]
        shown.append(m["text"] + json.dumps(blocks, ensure_ascii=False))
    shown += [json.dumps(r, ensure_ascii=False) for r in slack.responses if r.get("path") in response_paths]
    return "\n".join(shown)


def test_isolation_matrix_public_private_dm(http: Driver, slack: SlackStandIn, citebot: Citebot, figures) -> None:
    channels = {place: new_channel(slack, prefix) for place, (prefix, *_) in PLACES.items()}
    team = slack.state.team_id
    titles: dict[str, str] = {}
    ids: dict[str, str] = {}
    for place, (_, kind, paper, _) in PLACES.items():
        _index(http, channels[place], (PDFS / f"{paper}.pdf").read_bytes(), f"{paper}.pdf", channel_type=kind)
        [doc] = citebot.documents(_scope(team, channels[place]))
        titles[place], ids[place] = doc.title, doc.document_id
    checks = leaks = forget_refused = forget_attempts = 0
    leaked: list[str] = []
    for place, channel in channels.items():
        paths: set[str] = set()
        for other, (_, _, _, question) in PLACES.items():
            payload = http.command("/ask", f"{question} [{place}]", channel)
            paths.add(payload["response_url"].split("127.0.0.1", 1)[1].split("/", 1)[1])
            post = slack.wait_for(
                lambda: [
                    m
                    for m in slack.channel_messages(channel)
                    if m.get("text", "").endswith(f"[{place}]") and question[:30] in m["text"]
                ]
            )
            http.final_reply(channel, post[-1]["ts"])
            if other != place:  # /forget another place's paper from here: refused; it stays there
                forget = http.command("/forget", titles[other][:40], channel)
                reply = slack.wait_for(lambda: http.responses_for(forget["response_url"]))[0]
                forget_attempts += 1
                forget_refused += reply["text"].startswith(":x:") and reply["response_type"] == "ephemeral"
                # the refusal echoes what the user typed, and shows nothing else of other places
                echo = json.dumps(reply, ensure_ascii=False).replace(titles[other][:40], "")
                for what in (titles[o] for o in PLACES if o != place):
                    checks += 1
                    if what in echo:
                        leaks += 1
                        leaked.append(f"/forget reply in {place} shows {what!r}")
        if place == "dm":  # a plain DM message is a question too
            message = slack.user_message(channel, USER, PLACES["public"][3])
            http.deliver(slack.message_event(channel, message))
            http.final_reply(channel, message["ts"])
        listing = http.command("/docs", "", channel)
        slack.wait_for(lambda: http.responses_for(listing["response_url"]))
        paths.add(listing["response_url"].split("127.0.0.1", 1)[1].split("/", 1)[1])
        wait_quiet(slack, 0.5)
        shown = _shown_by_bot(slack, channel, {"/" + p for p in paths})
        assert titles[place] in shown  # the place does see its own paper (cited and listed)
        for other in PLACES:
            if other == place:
                continue
            for what in (titles[other], ids[other][:12]):  # a title (citations, /docs) or a document id
                checks += 1
                if what in shown:
                    leaks += 1
                    leaked.append(f"{what!r} shown in {place}")
        # and below Slack: what this place may search is only its own paper
        hits = citebot.search(" ".join(q for *_, q in PLACES.values()), _scope(team, channel))
        checks += 1
        if {h.chunk.document_id for h in hits} - {ids[place]}:
            leaks += 1
            leaked.append(f"retrieval in {place} returned other documents")
    for place, channel in channels.items():
        assert [d.document_id for d in citebot.documents(_scope(team, channel))] == [ids[place]]
    figures.record(
        "isolation",
        places="public channel C…, private channel G… (group), DM D… (im)",
        requests_per_place="3 /ask (one per paper) + 2 /forget of the other places' papers + /docs (+1 plain DM message)",
        leak_checks=checks,
        leaks=leaks,
        cross_channel_forget_attempts=forget_attempts,
        cross_channel_forget_refused=forget_refused,
    )
    assert leaks == 0, leaked
    assert forget_refused == forget_attempts == 6


def _scope(team: str, channel: str):
    from citebot.domain import Scope

    return Scope(team, channel)


# --- HTTP mode replays -----------------------------------------------------------------------------
def test_http_replayed_requests_do_no_second_work(http: Driver, slack: SlackStandIn, figures) -> None:
    """The same signed request (same signature and timestamp) delivered twice within the 5-minute
    window is genuine to the signature check; the second one must do nothing."""
    channel = new_channel(slack)
    _index(http, channel, (PDFS / "1706.03762.pdf").read_bytes(), "attention.pdf")
    # a slash command
    payload = slack.slash_command("/ask", "How many attention heads were used? (replay)", channel=channel, user=USER)
    raw = urllib.parse.urlencode(payload)
    headers = slack.sign(raw)
    statuses = [slack.deliver_http(http.events_url, raw, headers=headers, signed=False)[0] for _ in range(3)]
    # an event (a mention), replayed byte for byte
    message = slack.user_message(channel, USER, f"<@{slack.state.bot_user_id}> What optimizer was used? (replay)")
    event_raw = json.dumps(slack.app_mention_event(channel, message))
    event_headers = slack.sign(event_raw) | {"Content-Type": "application/json"}
    statuses += [slack.deliver_http(http.events_url, event_raw, headers=event_headers, signed=False)[0] for _ in range(3)]
    post = slack.wait_for(
        lambda: [m for m in slack.channel_messages(channel) if "(replay)" in m["text"] and "asked:" in m["text"]]
    )
    http.final_reply(channel, post[0]["ts"])
    http.final_reply(channel, message["ts"])
    wait_quiet(slack)
    asked = [m for m in slack.channel_messages(channel) if "(replay)" in m["text"] and "asked:" in m["text"]]
    command_answers = [m for m in slack.thread(channel, asked[0]["ts"]) if m.get("bot_id") and m["ts"] != asked[0]["ts"]]
    mention_answers = [m for m in slack.thread(channel, message["ts"]) if m.get("bot_id")]
    figures.record(
        "http_replay",
        deliveries_per_request=3,
        statuses=statuses,
        slash_command_posts=len(asked),
        slash_command_answers=len(command_answers),
        mention_answers=len(mention_answers),
        covered_in_tests_bot="forged/stale signatures: tests/bot/test_bot_http_security.py",
    )
    assert all(s == 200 for s in statuses), statuses
    assert len(asked) == 1 and len(command_answers) == 1 and len(mention_answers) == 1


# --- file downloads --------------------------------------------------------------------------------
class Evil(BackgroundServer):
    """Somewhere the bot must never fetch from: records every request (and its headers)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        app = web.Application(middlewares=[recording_middleware(self.requests, FaultQueue(), lambda f, r: None)])

        async def pdf(request: web.Request) -> web.Response:
            return web.Response(body=(PDFS / "1301.3781.pdf").read_bytes(), content_type="application/pdf")

        app.router.add_route("*", "/{tail:.*}", pdf)
        super().__init__(app)


def test_files_come_only_from_slacks_file_object_with_the_bot_token(http: Driver, slack: SlackStandIn, figures) -> None:
    with Evil() as evil:
        channel = new_channel(slack)
        urls = [f"{slack.url}/evil.pdf", f"{evil.url}/evil.pdf"]
        # 1. a real share whose text carries links to PDFs elsewhere
        message, payload = share_file(slack, channel, (PDFS / "1706.03762.pdf").read_bytes(), "attention.pdf")
        text = f"see http://127.0.0.1:{slack.server.port}/evil.pdf and <{urls[1]}|paper.pdf> {urls[0]}"
        payload["event"]["text"] = text
        downloads_before = len([r for r in slack.requests if r.path.startswith("/files-pri/")])
        http.deliver(payload)
        assert (
            "pages"
            in slack.wait_for(
                lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t or ":x:" in t], timeout=120
            )[0]
        )
        # 2. a mention whose text is only a link to a PDF elsewhere (no file at all)
        mention = slack.user_message(channel, USER, f"<@{slack.state.bot_user_id}> index <{urls[1]}> please")
        http.deliver(slack.app_mention_event(channel, mention))
        http.final_reply(channel, mention["ts"])
        # 3. a file object whose download URL points off Slack: refused, the token goes nowhere
        message3, payload3 = share_file(slack, channel, (PDFS / "1301.3781.pdf").read_bytes(), "w2v.pdf")
        payload3["event"]["files"][0]["url_private_download"] = f"{evil.url}/files-pri/T-F/download/w2v.pdf"
        payload3["event"]["files"][0]["url_private"] = f"{evil.url}/files-pri/T-F/w2v.pdf"
        http.deliver(payload3)
        refused = slack.wait_for(lambda: thread_texts(slack, channel, message3["ts"]), timeout=60)[0]
        wait_quiet(slack, 1.0)
        downloads = [r for r in slack.requests if r.path.startswith("/files-pri/")][downloads_before:]
        evil_on_slack = [r for r in slack.requests if "evil" in r.path]
        figures.record(
            "file_downloads",
            links_in_message_text=3,
            evil_requests=len(evil.requests) + len(evil_on_slack),
            downloads_from_slack_file_url=len(downloads),
            downloads_with_exactly_the_bot_token=sum(
                r.headers.get("Authorization") == f"Bearer {BOT_TOKEN}" for r in downloads
            ),
            off_slack_file_url_reply=refused,
        )
        assert not evil.requests and not evil_on_slack
        assert len(downloads) == 1 and downloads[0].headers.get("Authorization") == f"Bearer {BOT_TOKEN}"
        assert "download" in refused.lower() and ":x:" in refused or "can't" in refused


# --- secrets ---------------------------------------------------------------------------------------
def test_no_secret_in_logs_output_or_slack_messages(
    http: Driver,
    socket: Driver,
    slack: SlackStandIn,
    openai_standin,
    citebot: Citebot,
    settings: Settings,
    capfd: pytest.CaptureFixture[str],
    caplog,
    figures,
    tmp_path,
) -> None:
    """A run with errors of every kind, all loggers at DEBUG, plus ``citebot serve`` as a
    subprocess at DEBUG: no token, secret or key anywhere in logs, output or Slack messages."""
    channel = new_channel(slack)
    _index(http, channel, (PDFS / "1706.03762.pdf").read_bytes(), "attention.pdf")
    # errors: model down, an unreadable file, a login page instead of a file, forged requests,
    # an unknown /forget, a Slack 500 and a 429 on posting
    openai_standin.faults.extend([Fault(status=500, path="chat")] * 10)
    http.command("/ask", "Which optimizer was used to train the Transformer?", channel)
    slack.wait_for(lambda: [m for m in slack.bot_messages(channel) if "try again" in m["text"]], timeout=60)
    openai_standin.faults.clear()
    for content, name, kw in (
        ((NASTY / "encrypted_libreoffice-writer-password.pdf").read_bytes(), "enc.pdf", {}),
        ((PDFS / "1810.04805.pdf").read_bytes(), "login.pdf", {"always_html": True}),
    ):
        message, payload = share_file(slack, channel, content, name, **kw)
        socket.deliver(payload)
        slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]), timeout=60)
    forged = slack.sign("command=%2Fask&text=hi", secret="wrong")
    slack.deliver_http(http.events_url, "command=%2Fask&text=hi", headers=forged, signed=False)
    forget = http.command("/forget", "no such paper", channel)
    slack.wait_for(lambda: http.responses_for(forget["response_url"]))
    slack.faults.extend([Fault(status=500, path="chat.postMessage"), Fault(status=429, retry_after=1, path="chat.update")])
    http.command("/ask", "How many attention heads? (secret-2)", channel)
    wait_quiet(slack, 1.5)
    slack.faults.clear()

    # the bot's own entry point (bot.runner.serve: its logging setup, Socket Mode) at DEBUG, answering
    # one question. (Not through `citebot serve`: that ignores CITEBOT_LOG_LEVEL, see the next test.)
    log_file = tmp_path / "serve.log"
    env = {
        **_env_without_secrets(),
        "WEAVIATE_URL": settings.weaviate_url,
        "WEAVIATE_GRPC_PORT": str(settings.weaviate_grpc_port),
        "CITEBOT_COLLECTION_PREFIX": "RelSlack",
        "CITEBOT_DATA_DIR": settings.data_dir,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": settings.openai_base_url,
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "CITEBOT_LOG_LEVEL": "DEBUG",
        "CITEBOT_HTTP_PORT": "0",
    }
    sockets_before = len(slack._sockets)
    with open(log_file, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", SERVE], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            slack.wait_for(lambda: len(slack._sockets) > sockets_before or proc.poll() is not None, timeout=90)
            assert proc.poll() is None, log_file.read_text()[-3000:]
            payload = slack.slash_command("/ask", "Which BLEU score was reached? (secret-3)", channel=channel, user=USER)
            envelope_id = slack.send_envelope("slash_commands", payload)  # the newest socket: the subprocess
            slack.wait_ack(envelope_id, timeout=10)
            post = slack.wait_for(
                lambda: [m for m in slack.channel_messages(channel) if "(secret-3)" in m["text"]], timeout=60
            )
            try:
                Driver(slack, None, "socket").final_reply(channel, post[0]["ts"], timeout=60)  # type: ignore[arg-type]
            except AssertionError:
                print(log_file.read_text(errors="replace")[-6000:])
                print(slack.thread(channel, post[0]["ts"]))
                raise
        finally:
            stop_process(proc)
    serve_output = log_file.read_text(errors="replace")
    captured = capfd.readouterr()
    logs = "\n".join(_LOG_TEXT) + caplog.text
    posted = json.dumps([c.args for c in slack.api_calls] + slack.responses, ensure_ascii=False)
    found = {
        where: {name: text.count(value) for name, value in SECRETS.items() if value in text}
        for where, text in (
            ("caplog (DEBUG)", logs),
            ("stdout/stderr", captured.out + captured.err),
            ("citebot serve output (DEBUG)", serve_output),
            ("Slack messages", posted),
        )
    }
    figures.record(
        "secrets",
        secrets_checked=list(SECRETS),
        log_lines_checked=logs.count("\n") + serve_output.count("\n"),
        slack_calls_checked=len(slack.api_calls),
        occurrences={k: sum(v.values()) for k, v in found.items()},
        serve_debug_output_lines=serve_output.count("\n"),
    )
    assert "DEBUG" in serve_output and "(secret-3)" in json.dumps(slack.channel_messages(channel))
    assert not any(found.values()), found


SERVE = "from bot.runner import serve; from citebot.settings import Settings; serve(Settings.from_env())"


def test_citebot_serve_honours_CITEBOT_LOG_LEVEL(slack: SlackStandIn, settings: Settings, tmp_path, figures) -> None:
    """`citebot serve` with the default CITEBOT_LOG_LEVEL=INFO must at least log that it is running."""
    env = {
        **_env_without_secrets(),
        "WEAVIATE_URL": settings.weaviate_url,
        "WEAVIATE_GRPC_PORT": str(settings.weaviate_grpc_port),
        "CITEBOT_COLLECTION_PREFIX": "RelSlack",
        "CITEBOT_DATA_DIR": settings.data_dir,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": settings.openai_base_url,
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "CITEBOT_LOG_LEVEL": "INFO",
        "CITEBOT_HTTP_PORT": "0",
    }
    log_file = tmp_path / "serve.log"
    sockets_before = len(slack._sockets)
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            slack.wait_for(lambda: len(slack._sockets) > sockets_before or proc.poll() is not None, timeout=90)
            time.sleep(0.5)
        finally:
            stop_process(proc)
    output = log_file.read_text(errors="replace")
    figures.record("secrets", citebot_serve_logs_running_line="citebot is running" in output)
    assert "citebot is running" in output, (
        "`citebot serve` ignores CITEBOT_LOG_LEVEL: bot/cli.py main() configures WARNING first, so "
        "bot/runner.py serve() must configure settings.log_level again (citebot.logs.configure). Output was:\n" + output
    )


def _env_without_secrets() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "WEAVIATE_", "CITEBOT_"))}
