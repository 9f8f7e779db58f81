"""Shared fixtures: one real Weaviate server per test session, stand-in model and arXiv servers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from citebot.settings import Settings
from citebot.weaviate_server import ensure_binary
from tests.paths import PDFS, TESTDATA
from tests.standins.settings import with_standins
from tests.weaviate_process import WeaviateProcess


@pytest.fixture(scope="session")
def weaviate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeaviateProcess]:
    """A real Weaviate server (the pinned, built binary) on free ports with a fresh data dir."""
    binary = ensure_binary(Settings.from_env().weaviate_binary_dir)
    root = tmp_path_factory.mktemp("weaviate")
    server = WeaviateProcess(binary, root / "data", log_path=root / "weaviate.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_settings(weaviate: WeaviateProcess, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings a newcomer would have with no API key, pointed at the session's Weaviate."""
    return replace(
        Settings.from_env({}),
        data_dir=str(tmp_path_factory.mktemp("citebot-data")),
        weaviate_url=weaviate.url,
        weaviate_grpc_port=weaviate.grpc_port,
        weaviate_binary_dir=Settings.from_env().weaviate_binary_dir,
    )


@pytest.fixture(scope="session")
def openai_standin():
    from tests.standins.openai_server import OpenAIStandin

    with OpenAIStandin() as server:
        yield server


@pytest.fixture(scope="session")
def arxiv_standin():
    from tests.standins.arxiv_server import ArxivStandin

    with ArxivStandin(TESTDATA) as server:
        yield server


@pytest.fixture(scope="session")
def offline_bot(base_settings: Settings, arxiv_standin):
    """Citebot as a newcomer runs it: no API key (local MiniLM, extractive answers)."""
    from dataflows.app import Citebot

    with Citebot(with_standins(base_settings, arxiv=arxiv_standin, collection_prefix="Offline")) as bot:
        yield bot


@pytest.fixture(scope="session")
def corpus(offline_bot):
    """The nine real arXiv PDFs, indexed once in the CLI scope."""
    from citebot.domain import CLI_SCOPE, Provenance

    results = {}
    for path in sorted(PDFS.glob("*.pdf")):
        results[path.stem] = offline_bot.ingest_pdf(
            path.read_bytes(), Provenance(scope=CLI_SCOPE, user="tester", filename=path.name)
        )
    return results
