"""The `citebot` command as a user runs it (a real process, a real Weaviate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from citebot.weaviate_server import free_port
from tests.paths import NASTY, PDFS


def run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=timeout)


def cli_environment(weaviate, data_dir, prefix: str, **extra: str) -> dict[str, str]:
    """A newcomer's environment (no citebot, model or Slack settings) pointed at the test Weaviate."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_", "CITEBOT_", "WEAVIATE_"))}
    env.update(
        WEAVIATE_URL=weaviate.url,
        WEAVIATE_GRPC_PORT=str(weaviate.grpc_port),
        CITEBOT_COLLECTION_PREFIX=prefix,
        CITEBOT_DATA_DIR=str(data_dir),
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def cli_env(weaviate, tmp_path_factory) -> dict[str, str]:
    return cli_environment(weaviate, tmp_path_factory.mktemp("cli-data"), "Cli")


def test_ingest_ask_docs_forget(cli_env):
    ingested = run(cli_env, "ingest", str(PDFS / "1706.03762.pdf"), str(NASTY / "encrypted_libreoffice-writer-password.pdf"))
    assert ingested.returncode == 1  # one of the two failed
    assert "1706.03762.pdf: Attention Is All You Need — 15 pages" in ingested.stdout
    assert "encrypted_libreoffice-writer-password.pdf: The PDF is password-protected" in ingested.stdout
    assert "Traceback" not in ingested.stderr

    asked = run(cli_env, "ask", "Which optimizer did the Transformer use and with what betas?")
    assert asked.returncode == 0, asked.stderr
    assert "Adam" in asked.stdout and "Attention Is All You Need — p. 7" in asked.stdout

    as_json = json.loads(run(cli_env, "--json", "ask", "What optimizer did the Transformer use?", "--top-k", "3").stdout)
    assert as_json["citations"] and as_json["citations"][0]["title"] == "Attention Is All You Need"

    docs = run(cli_env, "--json", "docs")
    assert [d["title"] for d in json.loads(docs.stdout)] == ["Attention Is All You Need"]

    forgot = run(cli_env, "forget", "attention")
    assert forgot.returncode == 0 and "Forgot: Attention Is All You Need" in forgot.stdout
    assert json.loads(run(cli_env, "--json", "docs").stdout) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["ingest", "/nonexistent/paper.pdf"], "no such file"),
        (["ask", "   "], "Ask a question in words"),
        (["forget", "no such thing"], "No document here matches"),
        (["arxiv", "not-an-id"], "is not an arXiv ID"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(cli_env, args, message):
    result = run(cli_env, *args)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 1


def test_unreachable_weaviate_is_one_line(cli_env):
    env = {**cli_env, "WEAVIATE_URL": f"http://127.0.0.1:{free_port()}", "WEAVIATE_GRPC_PORT": str(free_port())}
    result = run(env, "docs", timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_embedded_default_persists_across_restarts(tmp_path):
    """No WEAVIATE_URL: Weaviate Embedded runs the pinned binary; data survives a restart."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_", "CITEBOT_", "WEAVIATE_"))}
    from citebot.settings import Settings

    env.update(
        CITEBOT_DATA_DIR=str(tmp_path),
        WEAVIATE_EMBEDDED_PORT=str(free_port()),
        WEAVIATE_EMBEDDED_GRPC_PORT=str(free_port()),
        WEAVIATE_BINARY_DIR=Settings.from_env().weaviate_binary_dir,
    )
    first = run(env, "ingest", str(PDFS / "1111.2011.pdf"))
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "weaviate").is_dir()
    second = run(env, "ask", "What is the critical point of the Bethe lattice model in the large connectivity limit?")
    assert second.returncode == 0, second.stderr
    assert "Quantum Criticality for Extended Nodes on a Bethe Lattice" in second.stdout


def test_up_keeps_weaviate_running_for_later_commands_and_down_stops_it(tmp_path):
    """`citebot up` starts Weaviate once; later commands use it (Weaviate Embedded would refuse to
    start a second server on the same ports); `--json` goes before or after the command."""
    import socket

    from citebot.settings import Settings

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_", "CITEBOT_", "WEAVIATE_"))}
    port = free_port()
    env.update(
        CITEBOT_DATA_DIR=str(tmp_path),
        WEAVIATE_EMBEDDED_PORT=str(port),
        WEAVIATE_EMBEDDED_GRPC_PORT=str(free_port()),
        WEAVIATE_BINARY_DIR=Settings.from_env().weaviate_binary_dir,
    )
    try:
        started = run(env, "up")
        assert started.returncode == 0, started.stderr
        assert f"Weaviate started on 127.0.0.1:{port}" in started.stdout and "citebot down" in started.stdout
        assert (tmp_path / "citebot-cli.sock").exists()
        again = json.loads(run(env, "up", "--json").stdout)
        assert again["started"] is False and again["port"] == port

        ingested = run(env, "ingest", str(PDFS / "1111.2011.pdf"))
        assert ingested.returncode == 0, ingested.stderr
        question = "What is the critical point of the Bethe lattice model in the large connectivity limit?"
        after = run(env, "ask", question, "--json", "--top-k", "3")
        before = run(env, "--json", "ask", question, "--top-k", "3")
        assert after.returncode == 0 and before.returncode == 0, after.stderr + before.stderr
        assert json.loads(after.stdout)["citations"] == json.loads(before.stdout)["citations"]
        assert json.loads(after.stdout)["citations"][0]["title"].startswith("Quantum Criticality for Extended Nodes")
        # The warm service answered: the command itself loaded neither the dataflows nor the model.
        warm = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "bot.cli", "ask", question], env=env, capture_output=True, text=True
        )
        assert warm.returncode == 0 and "Quantum Criticality for Extended Nodes" in warm.stdout
        assert "dataflows.app" not in warm.stderr and "onnxruntime" not in warm.stderr
        # Other settings than the service's: the command answers by itself, from the same server.
        other = run({**env, "CITEBOT_TOP_K": "2"}, "ask", question, "--json")
        assert other.returncode == 0 and len(json.loads(other.stdout)["citations"]) <= 2
        empty = run(env, "ask", "   ")
        assert empty.returncode == 1 and "Ask a question in words" in empty.stderr
    finally:
        stopped = run(env, "down")
    assert stopped.returncode == 0 and "Weaviate stopped" in stopped.stdout
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the server still listens after `citebot down`"
    assert not (tmp_path / "citebot-cli.sock").exists()
    assert "No Weaviate started by `citebot up` is running." in run(env, "down").stdout
    # Without it, commands start Weaviate Embedded themselves again, on the same data.
    docs = run(env, "docs", "--json")
    assert docs.returncode == 0, docs.stderr
    assert [d["title"] for d in json.loads(docs.stdout)][0].startswith("Quantum Criticality")
