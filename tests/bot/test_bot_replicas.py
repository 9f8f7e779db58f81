"""Two bot replicas on one Weaviate (issue 17, item 5): the same PDF shared in two channels at
once, each share delivered to a different replica. Each replica has its own ``Citebot`` (as two
processes would); the ingest claim lives in Weaviate, so one indexes and the other waits for it.

Before the lease, the second replica took the first one's half-stored document for a crashed
ingest and deleted it, and one or both users got an error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from bot.runner import BotServer
from citebot.settings import Settings
from dataflows.app import Citebot
from tests.bot.harness import BotThread, Driver, new_channel, share_file, thread_texts
from tests.paths import PDFS
from tests.standins.slack_server import SlackStandIn

BERT = PDFS / "1810.04805.pdf"


@pytest.fixture(scope="module")
def replicas(bot_settings: Settings, slack: SlackStandIn) -> Iterator[list[Driver]]:
    settings = replace(bot_settings, collection_prefix="Replicas")
    bots = [Citebot(settings) for _ in range(2)]
    threads = [BotThread(BotServer(settings, bot, host="127.0.0.1", port=0)).start() for bot in bots]
    yield [Driver(slack, thread, "http") for thread in threads]
    for thread, bot in zip(threads, bots, strict=True):
        thread.stop()
        bot.close()


def test_one_pdf_shared_in_two_channels_on_two_replicas_is_indexed_once(replicas: list[Driver], slack: SlackStandIn) -> None:
    channels = [new_channel(slack), new_channel(slack)]
    shares = [share_file(slack, channel, BERT.read_bytes(), "bert.pdf") for channel in channels]
    for replica, (_, payload) in zip(replicas, shares, strict=True):
        replica.deliver(payload)
    replies = [
        slack.wait_for(lambda c=channel, m=message: thread_texts(slack, c, m["ts"]), timeout=240)[0]
        for channel, (message, _) in zip(channels, shares, strict=True)
    ]
    assert all(r.startswith(":white_check_mark:") for r in replies), replies
    assert sorted("already indexed here" in r for r in replies) == [False, True], replies
    for channel, (message, _) in zip(channels, shares, strict=True):
        slack.wait_for(lambda c=channel, m=message: "white_check_mark" in slack.reactions_on(c, m["ts"]))
    store = replicas[0].bot.server.citebot.store
    [doc] = list(store.documents.iterator())
    assert doc.properties["status"] == "ready"
    assert sorted(doc.properties["scopes"]) == sorted(f"{slack.state.team_id}/{c}" for c in channels)
    assert store.chunks.aggregate.over_all(total_count=True).total_count == doc.properties["chunks"]
