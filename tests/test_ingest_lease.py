"""Two processes, one PDF (issue 17, item 5): the ingest claim holds across processes.

Real `python -m bot.cli` processes on the session's Weaviate. Before the lease, the second process
took the first one's half-stored document for a crashed ingest and deleted it (the first then
failed with "Only N of M chunks reached Weaviate."), or died on a raw 422 "already exists".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from citebot.settings import Settings
from citebot.store import Store, connect
from tests.paths import PDFS

PAPER = PDFS / "1706.03762.pdf"


@pytest.fixture
def env(weaviate, tmp_path, request) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_", "CITEBOT_", "WEAVIATE_"))}
    env.update(
        WEAVIATE_URL=weaviate.url,
        WEAVIATE_GRPC_PORT=str(weaviate.grpc_port),
        CITEBOT_COLLECTION_PREFIX="Lease" + request.node.name.split("_")[1].capitalize(),
        CITEBOT_DATA_DIR=str(tmp_path),
    )
    return env


@pytest.fixture
def store(env):
    settings = replace(
        Settings.from_env({}), weaviate_url=env["WEAVIATE_URL"], weaviate_grpc_port=int(env["WEAVIATE_GRPC_PORT"])
    )
    client = connect(settings)
    yield Store(client, env["CITEBOT_COLLECTION_PREFIX"])
    client.close()


def start_ingest(env: dict[str, str], scope: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "--scope", scope, "ingest", str(PAPER)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_ingesting_the_same_pdf_both_succeed(env, store) -> None:
    first, second = start_ingest(env, "T1/C1"), start_ingest(env, "T1/C2")
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert "Traceback" not in err1 + err2
    assert first.returncode == 0 and second.returncode == 0, (out1, err1, out2, err2)
    lines = sorted([out1.strip(), out2.strip()])
    assert lines[0].startswith("1706.03762.pdf: Attention Is All You Need — 15 pages")
    assert lines[1] == "1706.03762.pdf: already indexed — Attention Is All You Need"
    docs = [d for d in store.documents.iterator()]
    assert len(docs) == 1 and docs[0].properties["status"] == "ready"
    assert sorted(docs[0].properties["scopes"]) == ["T1/C1", "T1/C2"]  # indexed once, visible in both channels
    chunks = store.chunks.aggregate.over_all(total_count=True).total_count
    assert chunks == docs[0].properties["chunks"]


def test_a_killed_ingest_is_taken_over_once_its_lease_expires(env, store) -> None:
    killed = start_ingest(env, "T1/C1")
    try:
        deadline = time.monotonic() + 120
        while not any(o.properties["status"] == "ingesting" for o in store.documents.iterator()):
            assert killed.poll() is None, killed.communicate()
            assert time.monotonic() < deadline, "the first ingest never began storing"
            time.sleep(0.05)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    # The dead process's lease is still live for a while: the next ingest waits for it to expire
    # (the owner renews it every few seconds; dead, it stops), then removes the leftovers and indexes.
    started = time.monotonic()
    again = start_ingest(env, "T1/C1")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, (out, err)
    assert out.startswith("1706.03762.pdf: Attention Is All You Need — 15 pages")
    assert time.monotonic() - started < 120
    [doc] = list(store.documents.iterator())
    assert doc.properties["status"] == "ready"
    assert store.chunks.aggregate.over_all(total_count=True).total_count == doc.properties["chunks"]
