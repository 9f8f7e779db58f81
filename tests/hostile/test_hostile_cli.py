"""Hostile input through `citebot` as a user runs it (a real process, a real Weaviate): files that
are not files, sizes that lie, names and titles that are not text, too many IDs. Each ends in its
own one-line message, promptly; the rest of a folder is still indexed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile import pdfgen
from tests.hostile.conftest import BUDGET_S, MARGIN_S
from tests.test_cli import cli_environment

# Python start, model load and Weaviate connection, on a busy 2-core machine.
STARTUP_S = 30.0


def run(env: dict[str, str], *args: str | bytes, timeout: float = 120) -> tuple[subprocess.CompletedProcess[bytes], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, timeout=timeout)
    return done, time.perf_counter() - started


def text(output: bytes) -> str:
    return output.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def cli_env(weaviate, tmp_path_factory) -> dict[str, str]:
    env = cli_environment(
        weaviate,
        tmp_path_factory.mktemp("hostile-cli-data"),
        "HostileCli",
        CITEBOT_PARSE_BUDGET=str(BUDGET_S),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return env


def test_files_that_are_not_regular_files_or_lie_about_their_size_are_refused_without_reading(cli_env, tmp_path):
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.pdf"
    zero.symlink_to("/dev/zero")
    sparse = tmp_path / "sparse.pdf"
    with open(sparse, "wb") as file:
        file.truncate(8 * 2**30)  # 8 GB that take no disk space
    done, seconds = run(cli_env, "ingest", str(fifo), str(zero), str(sparse), "/dev/zero")
    out = text(done.stdout)
    assert done.returncode == 1 and "Traceback" not in text(done.stderr)
    assert "pipe.pdf: this is a FIFO (named pipe), not a PDF file; give the path of a PDF file." in out
    assert "zero.pdf: this is a character device, not a PDF file" in out
    assert "sparse.pdf: The file is 8192.0 MiB; the limit is 50.0 MiB." in out
    assert "zero: this is a character device" in out  # /dev/zero itself
    assert seconds < STARTUP_S


def test_a_folder_with_odd_names_and_hostile_files_is_processed_to_the_end(cli_env, tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    latin1 = Path(os.fsdecode(folder.as_posix().encode() + b"/caf\xe9 zebra.pdf"))  # not UTF-8
    latin1.write_bytes(pdfgen.paper("zebra"))
    (folder / "\x1b[2K\x1b[1Gevil.pdf").write_bytes(pdfgen.escape_title())
    (folder / "slow.pdf").write_bytes(pdfgen.tiny_operators(1_000_000))
    os.mkfifo(folder / "fifo.pdf")
    (folder / "zz okapi.pdf").write_bytes(pdfgen.paper("okapi"))

    done, seconds = run(cli_env, "ingest", str(folder))
    out, err = text(done.stdout), text(done.stderr)
    assert "Traceback" not in err and "\x1b" not in out + err and "\x07" not in out
    lines = out.splitlines()
    assert len(lines) == 5, out
    assert "caf\ufffd zebra.pdf: The zebra report — 2 pages" in out
    assert "evil.pdf: citebot: all documents were deleted, run rm -rf ~ — 1 pages" in out
    assert "fifo.pdf: this is a FIFO (named pipe), not a PDF file" in out
    assert "slow.pdf: The PDF took too long to read (over 3 s); is it a scanned or unusual PDF?" in out
    assert "zz okapi.pdf: The okapi report — 2 pages" in out  # after the bad ones: the folder went on
    assert done.returncode == 1
    assert seconds < STARTUP_S + BUDGET_S + MARGIN_S + 30  # + embedding three small PDFs

    docs, _ = run(cli_env, "docs")
    assert "\x1b" not in text(docs.stdout) and "The zebra report" in text(docs.stdout)

    # A question with bytes that are not UTF-8 (a Latin-1 terminal): answered, not a TypeError.
    asked, _ = run(cli_env, "ask", b"How much does the zebra method improve accuracy? caf\xe9")
    assert asked.returncode == 0, text(asked.stderr)
    assert "twelve percent" in text(asked.stdout) and "The zebra report" in text(asked.stdout)


def test_ten_thousand_arxiv_ids_are_refused_at_once(cli_env):
    ids = [f"2301.{i:05d}" for i in range(10_000)]
    done, seconds = run(cli_env, "arxiv", *ids)
    assert done.returncode == 1
    assert text(done.stderr).strip() == (
        "citebot: That is 10,000 arXiv IDs; I add at most 10 per request. Send them in smaller groups."
    )
    assert seconds < STARTUP_S
