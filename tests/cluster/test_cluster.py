"""Past one machine: a 3-node Weaviate cluster (replication factor 3) and two bot replicas in HTTP
mode serving one stand-in Slack, under a steady load of asks and PDF shares, with faults.

* Three ``weaviate-server`` processes from the pinned binary on 127.0.0.1 (tests/cluster/cluster.py).
* Two ``python -m bot.cli serve`` processes (HTTP mode), each given all three nodes in
  WEAVIATE_URL in a different order: bot A talks to node 0, bot B to node 1.
* Slack's side is played as Slack and a round-robin reverse proxy would: each request goes to
  one replica; when that fails (refused, 5xx, no ack in 3 s) Slack retries it — with
  ``X-Slack-Retry-Num`` — and the proxy sends the retry to the other replica.
* Models: the stand-in OpenAI server (embeddings and streamed answers, fast on 2 cores).

Phase 1 (Weaviate node fault): 40 asks + 4 PDF shares spread over both bots, a few of them
delivered to both replicas at once (a retry racing the original, a mention's two events); node 0
— bot A's node — is SIGKILLed a quarter into the load and restarted at three quarters. Every ask
must be answered or get an actionable error (0 lost, >= 95 % answered), every share indexed or
clearly refused, nothing answered twice; then node 0 must catch up (the same objects, read from
each node's own copy, on all three nodes).

Phase 2 (bot replica fault): bot A is SIGKILLed while asks keep coming; the ones sent to it are
retried by Slack to bot B and answered exactly once.

Also on the same cluster: concurrent event claims through three nodes (each won exactly once),
and a single node's index copied into the cluster (``python -m citebot.migrate``).

Figures are written to tests/cluster/figures.json (docs/reliability.md quotes them).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from citebot.settings import Settings
from citebot.weaviate_server import ensure_binary, free_port
from tests.bot.harness import USER, new_channel, share_file, thread_texts
from tests.cluster.cluster import WeaviateCluster
from tests.paths import PDFS, REPO
from tests.standins.background import stop_process
from tests.standins.slack_server import SlackStandIn

pytestmark = pytest.mark.cluster

PREFIX = "Cluster"
FIGURES = Path(__file__).resolve().parent / "figures.json"
ASKS, SHARES = 40, ["2004.04906", "1111.2011", "1512.03385", "1412.6980"]  # the smallest PDFs
PRELOADED = "1810.04805"
QUESTIONS = [
    "What are the masked LM and next sentence prediction tasks?",
    "How many layers and attention heads does BERT large have?",
    "Which datasets were used for pre-training?",
    "What is the GLUE score of BERT?",
    "How is fine-tuning done for question answering on SQuAD?",
]
SEND_EVERY_S = 0.25  # the steady load: one request every 250 ms, alternating replicas
# Catch-up: async replication compares the nodes' hash trees this often (default 30 s; 5 s is the least).
# It copies an object once it is older than ASYNC_REPLICATION_PROPAGATION_DELAY (left at its default, 30 s).
CLUSTER_ENV = {"ASYNC_REPLICATION_FREQUENCY": "5s", "ASYNC_REPLICATION_FREQUENCY_WHILE_PROPAGATING": "5s"}


# --- processes ----------------------------------------------------------------------------------
class BotProcess:
    """``python -m bot.cli serve`` in HTTP mode on a free port."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.port, self.log = name, free_port(), log
        self.env = env | {"CITEBOT_HTTP_PORT": str(self.port)}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def start(self) -> BotProcess:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve"], cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
            if self.health():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy; see {self.log}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeaviateCluster]:
    binary = ensure_binary(Settings.from_env().weaviate_binary_dir)
    with WeaviateCluster(binary, tmp_path_factory.mktemp("cluster"), extra_env=CLUSTER_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as server:
        # ~80 posts and 40 final edits in one channel within seconds are beyond Slack's budgets
        # (~1 post a second per channel, Tier 3 chat.update); this test is about Weaviate and bot
        # faults, so the stand-in's budgets are lifted (tests/bot/test_bot_slack_rules.py holds
        # the bot to them), as in tests/reliability/test_slack.py's load test.
        for method in ("chat.postMessage", "chat.update"):
            server.limit(method, per_minute=60_000, burst=1_000)
        yield server


@pytest.fixture(scope="module")
def bots(cluster: WeaviateCluster, slack: SlackStandIn, openai_standin, tmp_path_factory) -> Iterator[list[BotProcess]]:
    root = tmp_path_factory.mktemp("bots")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "WEAVIATE_", "CITEBOT_"))}
    base |= {
        "PYTHONPATH": str(REPO),
        "CITEBOT_REPLICATION_FACTOR": "3",
        "CITEBOT_COLLECTION_PREFIX": PREFIX,
        "CITEBOT_DATA_DIR": str(root),
        "OPENAI_API_KEY": "sk-cluster-test",
        "OPENAI_BASE_URL": f"{openai_standin.url}/v1",
        "CITEBOT_MODEL_RETRIES": "3",
        "CITEBOT_MODEL_TIMEOUT": "10",
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "CITEBOT_LOG_LEVEL": "INFO",
    }
    urls = [f"{n.url}?grpc_port={n.grpc_port}" for n in cluster.nodes]
    replicas = [
        BotProcess("bot-a", base | {"WEAVIATE_URL": ",".join(urls)}, root / "bot-a.log"),
        BotProcess("bot-b", base | {"WEAVIATE_URL": ",".join(urls[1:] + urls[:1])}, root / "bot-b.log"),
    ]
    replicas[0].start().wait_ready()  # one at a time: the first creates the collections
    replicas[1].start().wait_ready()
    yield replicas
    for bot in replicas:
        bot.stop()


_figures: dict[str, Any] = {}


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, Any]]:
    yield _figures
    if _figures:
        FIGURES.write_text(json.dumps(_figures, indent=2, sort_keys=True) + "\n")


# --- Slack and its reverse proxy --------------------------------------------------------------------
class Delivery:
    """Deliver like Slack through a round-robin proxy: a failed attempt is retried (with
    X-Slack-Retry-Num) on the other replica. Records which replica acknowledged what."""

    def __init__(self, slack: SlackStandIn, bots: list[BotProcess]) -> None:
        self.slack, self.bots = slack, bots
        self.retries = 0
        self.failed: list[str] = []
        self.lock = threading.Lock()

    def attempt(self, bot: BotProcess, payload: dict[str, Any], retry: int | None) -> bool:
        try:
            status, _, _ = self.slack.deliver_http(bot.events_url, payload, retry_num=retry, timeout=3.0)
        except OSError:  # refused, reset, no ack within Slack's 3 seconds
            return False
        return status == 200

    def send(self, payload: dict[str, Any], first: int) -> int | None:
        """Index of the replica that acknowledged, after up to 3 retries as Slack does."""
        for attempt in range(4):
            bot = self.bots[(first + attempt) % len(self.bots)]
            if self.attempt(bot, payload, attempt or None):
                return (first + attempt) % len(self.bots)
            with self.lock:
                self.retries += 1
            time.sleep(0.2)
        self.failed.append(json.dumps(payload)[:120])
        return None

    def send_to_both(self, payload: dict[str, Any]) -> None:
        """The same request reaching both replicas at once (a retry racing the original)."""
        threads = [threading.Thread(target=self.attempt, args=(bot, payload, i or None)) for i, bot in enumerate(self.bots)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _asked_posts(slack: SlackStandIn, channel: str, marker: str) -> list[dict[str, Any]]:
    return [m for m in slack.channel_messages(channel) if m.get("bot_id") and "asked:" in m["text"] and marker in m["text"]]


def _final(message: dict[str, Any]) -> bool:
    return "Thinking" not in message["text"] and "▍" not in message["text"]


def _replies(slack: SlackStandIn, channel: str, ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.thread(channel, ts) if m.get("bot_id") and m["ts"] != ts]


_response_urls: dict[str, str] = {}  # ask marker -> its response_url (where ephemeral replies go)


def _ephemeral(slack: SlackStandIn, marker: str) -> list[str]:
    url = _response_urls.get(marker)
    if url is None:
        return []
    path = "/" + url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    return [str(r.get("text", "")) for r in slack.responses if r.get("path") == path]


def _outcome(slack: SlackStandIn, channel: str, marker: str) -> str:
    """answered | error (actionable) | pending | duplicate for the ask carrying ``marker``: what
    the asker sees in the channel, or privately when nothing could be posted there."""
    posts = _asked_posts(slack, channel, marker)
    if len(posts) > 1:
        return "duplicate"
    if not posts:
        errors = [t for t in _ephemeral(slack, marker) if t.startswith((":x:", ":warning:"))]
        return "pending" if not errors else "error" if len(errors) == 1 else "duplicate"
    replies = _replies(slack, channel, posts[0]["ts"])
    if len(replies) > 1:
        return "duplicate"
    if not replies or not _final(replies[0]):
        return "pending"
    return "error" if replies[0]["text"].startswith((":x:", ":warning:")) else "answered"


def _error_text(slack: SlackStandIn, channel: str, marker: str) -> str:
    posts = _asked_posts(slack, channel, marker)
    return _replies(slack, channel, posts[0]["ts"])[0]["text"] if posts else _ephemeral(slack, marker)[0]


def _mention_outcome(slack: SlackStandIn, channel: str, message: dict[str, Any]) -> str:
    replies = [m for m in slack.thread(channel, message["ts"]) if m.get("bot_id")]
    if len(replies) > 1:
        return "duplicate"
    if not replies or not _final(replies[0]):
        return "pending"
    return "error" if replies[0]["text"].startswith((":x:", ":warning:")) else "answered"


def _wait_settled(check, keys: list[Any], timeout: float) -> dict[Any, str]:
    deadline = time.monotonic() + timeout
    while True:
        outcomes = {k: check(k) for k in keys}
        if all(o != "pending" for o in outcomes.values()) or time.monotonic() > deadline:
            return outcomes
        time.sleep(0.5)


def _failover_seconds(log: Path, killed_at: float) -> float | None:
    """Seconds from the kill to the bot's "now using <next node>" log line."""
    import datetime as dt

    for line in log.read_text(errors="replace").splitlines():
        if "now using" in line:
            stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            return round(stamp - killed_at, 2)
    return None


# --- catch-up: what each node holds in its own copy ----------------------------------------------
def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise AssertionError(f"{url}: {error.code} {error.read()[:300]!r}") from None


def _all_ids(cluster: WeaviateCluster, collection: str) -> list[str]:
    ids, after = [], ""
    while True:
        page = _get(f"{cluster.nodes[1].url}/v1/objects?class={collection}&limit=500{after}")
        objects = page.get("objects") or []
        ids += [o["id"] for o in objects]
        if len(objects) < 500:
            return ids
        after = f"&after={objects[-1]['id']}"


def _copy_on(node, collection: str, uid: str) -> Any:
    """The object as ``node`` itself stores it (``node_name``: no other replica consulted)."""
    found = _get(f"{node.url}/v1/objects/{collection}/{uid}?node_name={node.name}")
    return None if found is None else (found["properties"], found.get("lastUpdateTimeUnix"))


def _compare_nodes(cluster: WeaviateCluster, ids: dict[str, list[str]]) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Per node, how many of ``ids`` its own copy holds; and the objects whose copies differ."""
    counts: dict[str, dict[str, int]] = {n.name: {} for n in cluster.nodes}
    differences = []
    for collection, uids in ids.items():
        for uid in uids:
            copies = [_copy_on(node, collection, uid) for node in cluster.nodes]
            for node, copy in zip(cluster.nodes, copies):
                counts[node.name][collection] = counts[node.name].get(collection, 0) + (copy is not None)
            if any(c != copies[0] for c in copies[1:]):
                differences.append(f"{collection}/{uid}: {[None if c is None else c[1] for c in copies]}")
    return counts, differences


# --- the test -------------------------------------------------------------------------------------
def test_node_killed_under_load_then_a_bot_replica_killed(
    cluster: WeaviateCluster, bots: list[BotProcess], slack: SlackStandIn, figures: dict[str, Any]
) -> None:
    delivery = Delivery(slack, bots)
    channel = new_channel(slack)
    # A paper to ask about, indexed before the load.
    message, payload = share_file(slack, channel, (PDFS / f"{PRELOADED}.pdf").read_bytes(), f"{PRELOADED}.pdf")
    assert delivery.send(payload, 0) is not None
    slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t], timeout=120)

    # ---- phase 1: 40 asks + 4 shares over both replicas; node 0 killed, then restarted ------------
    jobs: list[tuple[str, Any]] = [("ask", i) for i in range(ASKS)]
    for n, paper in enumerate(SHARES):
        jobs.insert(5 + n * 10, ("share", paper))
    kill_at, restart_at = len(jobs) // 4, 3 * len(jobs) // 4
    shares: dict[str, tuple[str, dict[str, Any]]] = {}
    mention: dict[str, Any] = {}
    timeline: dict[str, float] = {}
    restart: dict[str, Any] = {}

    sent_at: dict[int, float] = {}
    settled_at: dict[int, float] = {}
    watching = threading.Event()

    def watch() -> None:  # when each ask's outcome becomes visible to the asker
        while not watching.wait(0.25):
            for i in list(sent_at):
                if i not in settled_at and _outcome(slack, channel, f"(cl-{i:02d})") != "pending":
                    settled_at[i] = time.monotonic()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    def ask(i: int) -> None:
        sent_at[i] = time.monotonic()
        payload = slack.slash_command("/ask", f"{QUESTIONS[i % len(QUESTIONS)]} (cl-{i:02d})", channel=channel, user=USER)
        _response_urls[f"(cl-{i:02d})"] = payload["response_url"]
        if i % 10 == 3:  # the same request on both replicas at once: one answer
            delivery.send_to_both(payload)
        else:
            delivery.send(payload, i % 2)

    def share(paper: str, first: int) -> None:
        where = new_channel(slack)
        message, payload = share_file(slack, where, (PDFS / f"{paper}.pdf").read_bytes(), f"{paper}.pdf")
        shares[paper] = (where, message)
        delivery.send(payload, first)

    def restart_node() -> None:
        began = time.monotonic()
        cluster.nodes[0].start()
        restart["ready_s"] = round(time.monotonic() - began, 2)

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        for n, (kind, what) in enumerate(jobs):
            if n == kill_at:
                cluster.nodes[0].kill()
                timeline["node_killed"] = time.monotonic() - began
                timeline["node_killed_wall"] = time.time()
            if n == restart_at:
                timeline["node_restarted"] = time.monotonic() - began
                futures.append(pool.submit(restart_node))
            if n == len(jobs) // 2:  # a mention: app_mention and message events, one per replica
                text = f"<@{slack.state.bot_user_id}> {QUESTIONS[0]} (cl-mention)"
                mention = slack.user_message(channel, USER, text)
                futures.append(pool.submit(delivery.attempt, bots[0], slack.app_mention_event(channel, mention), None))
                futures.append(pool.submit(delivery.attempt, bots[1], slack.message_event(channel, mention), None))
            futures.append(pool.submit(ask, what) if kind == "ask" else pool.submit(share, what, n % 2))
            time.sleep(SEND_EVERY_S)
        for f in futures:
            f.result()
    sent_s = time.monotonic() - began

    outcomes = _wait_settled(lambda i: _outcome(slack, channel, f"(cl-{i:02d})"), list(range(ASKS)), timeout=150)
    time.sleep(0.5)
    watching.set()
    watcher.join()
    latency = {i: settled_at[i] - sent_at[i] for i in settled_at}
    killed_at = began + timeline["node_killed"]
    after_kill = [v for i, v in latency.items() if killed_at <= sent_at[i] <= killed_at + 10]
    mention_outcome = _wait_settled(lambda _: _mention_outcome(slack, channel, mention), ["m"], 60)["m"]

    def share_outcome(paper: str) -> str:
        where, message = shares[paper]
        texts = [t for t in thread_texts(slack, where, message["ts"]) if t != message["text"]]
        if len(texts) > 1:
            return "duplicate"
        if not texts:
            return "pending"
        return "indexed" if "pages" in texts[0] else "error" if texts[0].startswith((":x:", ":warning:")) else texts[0]

    share_outcomes = _wait_settled(share_outcome, SHARES, timeout=120)
    settled_s = time.monotonic() - began
    answered = sum(o == "answered" for o in outcomes.values())
    errors = [i for i, o in outcomes.items() if o == "error"]
    lost = [i for i, o in outcomes.items() if o == "pending"]
    duplicates = [i for i, o in outcomes.items() if o == "duplicate"]
    error_texts = sorted({_error_text(slack, channel, f"(cl-{i:02d})")[:120] for i in errors})

    # ---- catch-up: node 0 holds what the others hold, read from its own copy ----------------------
    catch_up_began = time.monotonic()
    cluster.wait_healthy(60)
    collections = [f"{PREFIX}{s}" for s in ("Document", "Chunk", "Event", "Meta", "Feedback")]
    deadline = time.monotonic() + 90
    while True:
        ids = {c: _all_ids(cluster, c) for c in collections}
        counts, differences = _compare_nodes(cluster, ids)
        per_node = list(counts.values())
        if (not differences and all(p == per_node[0] for p in per_node)) or time.monotonic() > deadline:
            break
        time.sleep(1)
    caught_up_s = time.monotonic() - catch_up_began

    figures["weaviate_node_killed"] = {
        "cluster": "3 Weaviate nodes on 127.0.0.1, replication factor 3, QUORUM reads and writes, async replication",
        "bots": "2 replicas in HTTP mode (bot A on node 0, bot B on node 1; WEAVIATE_URL lists all three)",
        "load": f"{ASKS} /ask + {len(SHARES)} PDF shares + 1 mention, one request every {SEND_EVERY_S}s over both replicas",
        "requests_on_both_replicas_at_once": sum(1 for i in range(ASKS) if i % 10 == 3) + 1,
        "fault": f"SIGKILL node 0 (bot A's node) after request {kill_at}, restart after request {restart_at}",
        "asks_answered": answered,
        "asks_with_actionable_error": len(errors),
        "error_replies": error_texts,
        "asks_lost": len(lost),
        "duplicate_replies": len(duplicates) + (mention_outcome == "duplicate"),
        "mention_on_two_replicas": mention_outcome,
        "shares": share_outcomes,
        "slack_retries_to_other_replica": delivery.retries,
        "ask_seconds_to_answer_p50_max": [round(statistics.median(latency.values()), 2), round(max(latency.values()), 2)],
        "ask_seconds_to_answer_max_for_asks_sent_in_10s_after_kill": round(max(after_kill, default=0), 2),
        "seconds_sending": round(sent_s, 1),
        "seconds_until_all_settled": round(settled_s, 1),
        "bot_a_moved_to_another_node_s_after_kill": _failover_seconds(bots[0].log, timeline["node_killed_wall"]),
        "node_restart_ready_s": restart.get("ready_s"),
        "catch_up_s_after_load": round(caught_up_s, 1),
        "objects_per_node_own_copy": counts,
        "objects_compared_on_every_node": sum(len(v) for v in ids.values()),
        "objects_different_between_nodes": len(differences),
    }
    assert not lost, f"lost asks {lost}"
    assert not duplicates and mention_outcome == "answered", (duplicates, mention_outcome)
    assert answered >= 0.95 * ASKS, (answered, error_texts)
    assert all(o in ("indexed", "error") for o in share_outcomes.values()), share_outcomes
    assert not delivery.failed, delivery.failed
    assert all(p == per_node[0] for p in per_node), counts
    assert not differences, differences[:5]

    # ---- phase 2: bot A SIGKILLed mid-load; Slack's retries reach bot B -----------------------------
    retries_before = delivery.retries
    markers = [f"(cl-b{i:02d})" for i in range(12)]
    killed_after = 4
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = []
        for i, marker in enumerate(markers):
            if i == killed_after:
                # between requests: a replica with no work in flight (see docs/reliability.md for the rest)
                while (bots[0].health() or {}).get("in_flight"):
                    time.sleep(0.05)
                bots[0].kill()
            question = f"{QUESTIONS[i % len(QUESTIONS)]} {marker}"
            payload = slack.slash_command("/ask", question, channel=channel, user=USER)
            _response_urls[marker] = payload["response_url"]
            futures.append(pool.submit(delivery.send, payload, i % 2))
            time.sleep(SEND_EVERY_S)
        acked_by = [f.result() for f in futures]
    bot_outcomes = _wait_settled(lambda m: _outcome(slack, channel, m), markers, timeout=90)
    # Slack gives up on no replica; a last redelivery of an answered request does nothing
    replay = slack.slash_command("/ask", f"{QUESTIONS[0]} (cl-replay)", channel=channel, user=USER)
    delivery.send(replay, 1)
    _wait_settled(lambda m: _outcome(slack, channel, m), ["(cl-replay)"], 60)
    delivery.attempt(bots[1], replay, 2)
    time.sleep(2)
    replay_outcome = _outcome(slack, channel, "(cl-replay)")
    figures["bot_replica_killed"] = {
        "load": f"{len(markers)} /ask, one every {SEND_EVERY_S}s, alternating replicas",
        "fault": f"SIGKILL bot A (with no request in flight) after request {killed_after}",
        "retried_by_slack_to_bot_b": delivery.retries - retries_before,
        "acknowledged_by": {"bot A": acked_by.count(0), "bot B": acked_by.count(1)},
        "answered": sum(o == "answered" for o in bot_outcomes.values()),
        "actionable_errors": sum(o == "error" for o in bot_outcomes.values()),
        "lost": sum(o == "pending" for o in bot_outcomes.values()),
        "duplicates": sum(o == "duplicate" for o in bot_outcomes.values()),
        "redelivered_answered_request": replay_outcome,
        "seconds_until_all_settled": round(time.monotonic() - began, 1),
    }
    assert all(o == "answered" for o in bot_outcomes.values()), bot_outcomes
    assert acked_by[killed_after:].count(0) == 0 and delivery.retries > retries_before
    assert replay_outcome == "answered"


def test_a_single_node_index_moves_into_the_cluster(
    cluster: WeaviateCluster, base_settings: Settings, openai_standin
) -> None:
    """docs/operations.md's migration: copy a single node's index into the cluster (python -m
    citebot.migrate); the cluster answers with the same documents, pages and ids, nothing re-embedded."""
    from citebot.domain import Provenance, Scope
    from citebot.migrate import migrate
    from dataflows.app import Citebot
    from tests.standins.settings import with_standins

    scope = Scope("T-migrate", "C-migrate")
    question = "What does dense passage retrieval use to encode passages and questions?"
    source = with_standins(base_settings, openai=openai_standin, collection_prefix="MigrateSource")
    with Citebot(source) as single:
        single.ingest_pdf((PDFS / "2004.04906.pdf").read_bytes(), Provenance(scope=scope, user=USER, filename="dpr.pdf"))
        single.claim_event("ev-before-migration")
        before = single.ask(question, scope)
        documents = single.documents(scope)
    target = replace(source, weaviate_url=cluster.weaviate_url, replication_factor=3, collection_prefix="Migrated")
    embedding_calls = openai_standin.embedding_calls
    copied = migrate(source, target, batch_size=50)
    again = migrate(source, target, batch_size=50)  # an interrupted run, started again: nothing doubles
    assert copied == again and copied["Document"] == 1 and copied["Chunk"] == documents[0].chunks and copied["Meta"] >= 1
    with Citebot(target) as clustered:
        assert clustered.documents(scope) == documents
        after = clustered.ask(question, scope)
        assert not clustered.claim_event("ev-before-migration"), "claimed events move too: no second work after the move"
        chunk_count = clustered.store.chunks.aggregate.over_all(total_count=True).total_count
        factor = clustered.client.collections.get("MigratedChunk").config.get().replication_config.factor
    cited = [(c.document_id, c.passage.chunk_id, c.pages) for c in after.citations]
    assert cited == [(c.document_id, c.passage.chunk_id, c.pages) for c in before.citations]
    assert after.citations, "the question is answered from the moved document"
    assert chunk_count == documents[0].chunks and factor == 3
    # only the two questions were embedded: the chunks moved with their vectors
    assert openai_standin.embedding_calls - embedding_calls == 1


def test_concurrent_claims_through_different_nodes_have_exactly_one_winner(cluster: WeaviateCluster) -> None:
    """Three claimers (three bot replicas, each on its own node) claim the same keys at the same
    moment, 20 times: every key is won exactly once; a claim seconds later is lost."""
    from citebot.store import Store, connect_node, weaviate_nodes

    settings = replace(Settings.from_env({}), weaviate_url=cluster.weaviate_url, replication_factor=3)
    stores = [Store(connect_node(settings, node), "Claims", 3) for node in weaviate_nodes(settings)]
    try:
        winners: dict[str, list[int]] = {}
        with ThreadPoolExecutor(max_workers=len(stores)) as pool:
            for n in range(20):
                key = f"race-{n}"
                barrier = threading.Barrier(len(stores))

                def claim(i: int) -> bool:
                    barrier.wait()
                    return stores[i].claim(key)

                results = list(pool.map(claim, range(len(stores))))
                winners[key] = [i for i, won in enumerate(results) if won]
        assert all(len(w) == 1 for w in winners.values()), winners
        assert not any(store.claim("race-0") for store in stores)
    finally:
        for store in stores:
            store.client.close()
