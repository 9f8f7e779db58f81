"""What every bench section shares: one real Weaviate, the stand-in OpenAI servers, settings
for a fresh collection prefix, the test material, progress output and percentiles."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the stand-ins live in tests/standins
    sys.path.insert(0, str(REPO))

from citebot.domain import Provenance, Scope  # noqa: E402
from citebot.settings import Settings  # noqa: E402
from citebot.weaviate_server import ensure_binary  # noqa: E402
from tests.paths import NASTY, TESTDATA  # noqa: E402
from tests.weaviate_process import WeaviateProcess  # noqa: E402

PDFS = sorted((TESTDATA / "pdfs").glob("*.pdf"))
BOOK = NASTY / "large_352pages_freeculture.pdf"
PAPERS_SCOPE = Scope("bench", "papers")
BOOK_SCOPE = Scope("bench", "book")

_T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, linear interpolation (numpy's default)."""
    import numpy

    return float(numpy.percentile(values, q)) if values else float("nan")


def provenance(path: Path, scope: Scope) -> Provenance:
    return Provenance(scope=scope, user="bench", source="file", filename=path.name, link=path.resolve().as_uri())


class StandinProcess:
    """The OpenAI stand-in in its own process (as the real API is), so its embedding work does
    not hold the benchmark process's GIL. Counters are not reachable; use OpenAIStandin in-process
    where calls must be counted."""

    def __init__(self, dim: int = 256) -> None:
        code = (
            f"import sys,time; sys.path.insert(0, {str(REPO)!r})\n"
            "from tests.standins.openai_server import OpenAIStandin\n"
            f"s = OpenAIStandin(dim={dim}).start(); print(s.url, flush=True)\n"
            "while True: time.sleep(3600)\n"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the OpenAI stand-in process did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class BenchEnv:
    """One run's shared resources. ``ingested`` caches collection prefixes that already hold the
    nine papers (in PAPERS_SCOPE) for an (embedder, chunk_chars, overlap) configuration."""

    quick: bool
    big: bool
    root: Path
    weaviate: WeaviateProcess
    base: Settings
    standin_url: str
    counting: Any  # OpenAIStandin in this process (counts chat calls and tokens)
    _standin_proc: StandinProcess
    ingested: dict[tuple[str, int, int], str] = field(default_factory=dict)
    memory_runs: dict[str, Any] = field(default_factory=dict)  # embedder -> bench.memory figures
    _prefixes: int = 0

    @classmethod
    def start(cls, quick: bool, big: bool = False) -> BenchEnv:
        from tests.standins.openai_server import OpenAIStandin

        root = Path(tempfile.mkdtemp(prefix="citebot-bench-"))
        binary = ensure_binary(Settings.from_env().weaviate_binary_dir)
        log(f"starting Weaviate ({binary.name[:16]}) in {root}")
        for attempt in range(3):  # server_environment picks free ports that another process may take first
            try:
                weaviate = WeaviateProcess(binary, root / f"weaviate{attempt}", log_path=root / "weaviate.log").start()
                break
            except RuntimeError as error:
                log(f"Weaviate did not start ({error}); retrying on other ports")
        else:
            raise RuntimeError(f"Weaviate did not start three times; see {root / 'weaviate.log'}")
        base = replace(
            Settings.from_env({}),
            data_dir=str(root / "data"),
            weaviate_url=weaviate.url,
            weaviate_grpc_port=weaviate.grpc_port,
            weaviate_binary_dir=Settings.from_env().weaviate_binary_dir,
        )
        proc = StandinProcess()
        counting = OpenAIStandin().start()
        return cls(
            quick=quick,
            big=big,
            root=root,
            weaviate=weaviate,
            base=base,
            standin_url=proc.url,
            counting=counting,
            _standin_proc=proc,
        )

    @property
    def standin_pid(self) -> int:
        return self._standin_proc.process.pid

    def prefix(self, label: str) -> str:
        self._prefixes += 1
        return f"Bench{label}{self._prefixes}"

    def settings(self, prefix: str, embedder: str, *, counting: bool = False, **changes: Any) -> Settings:
        """embedder: "standin" (OpenAI-compatible stand-in, picked by CITEBOT_EMBEDDINGS=auto) or
        "minilm" (no key: the offline default). ``counting`` routes to the in-process stand-in."""
        if embedder == "standin":
            url = self.counting.url if counting else self.standin_url
            changes.update(openai_api_key="sk-bench", openai_base_url=f"{url}/v1", model_max_retries=2, model_timeout_s=30.0)
        elif embedder == "minilm+llm":  # offline embeddings, the counting stand-in as chat model
            changes.update(
                openai_api_key="sk-bench",
                openai_base_url=f"{self.counting.url}/v1",
                embedding_backend="local",
                model_max_retries=2,
                model_timeout_s=30.0,
            )
        return replace(self.base, collection_prefix=prefix, **changes)

    def env_vars(self, settings: Settings) -> dict[str, str]:
        """The same settings as environment variables (for subprocesses such as `citebot ingest`)."""
        from dataclasses import fields

        out = {k: v for k, v in os.environ.items() if not k.startswith(("CITEBOT_", "WEAVIATE_", "OPENAI_"))}
        for f in fields(settings):
            out[f.metadata["env"]] = str(getattr(settings, f.name))
        return out

    def papers(self) -> list[Path]:
        return PDFS[:3] if self.quick else PDFS

    def stop(self) -> None:
        for action in (self._standin_proc.stop, self.counting.stop, self.weaviate.stop):
            try:
                action()
            except Exception as error:  # cleanup must not hide the results
                log(f"cleanup: {type(error).__name__}: {error}")


def ingest_papers(env: BenchEnv, embedder: str, chunk_chars: int = 1000, overlap: int = 150) -> str:
    """A prefix holding the nine papers for this configuration (ingested once per run)."""
    from dataflows.app import Citebot

    key = (embedder, chunk_chars, overlap)
    if key in env.ingested:
        return env.ingested[key]
    prefix = env.prefix(f"{embedder.title().replace('+', '')}C{chunk_chars}")
    settings = env.settings(prefix, embedder, chunk_chars=chunk_chars, chunk_overlap_chars=overlap)
    began = time.perf_counter()
    chunks = 0
    with Citebot(settings) as bot:
        for path in env.papers():
            chunks += bot.ingest_pdf(path.read_bytes(), provenance(path, PAPERS_SCOPE)).document.chunks
    log(
        f"  ingested {len(env.papers())} papers ({embedder}, {chunk_chars} chars): {chunks} chunks "
        f"in {time.perf_counter() - began:.1f}s"
    )
    env.ingested[key] = prefix
    return prefix
