"""``citebot doctor``: is this deployment configured and can it reach what it needs?

``run_checks(settings)`` returns one ``Check`` per concern (configuration, Weaviate, Slack, the
model endpoint or the local model files); ``format_checks`` renders one line each. Every check
is fast (short timeouts, no retries), never raises, and never prints a secret. The checks run
concurrently, so the whole report takes about as long as the slowest one (at most ~5 s).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

from citebot import logs
from citebot.settings import TOP_K_MAX, TOP_K_MIN, Settings, SettingsError
from citebot.weaviate_server import WEAVIATE_VERSION, embedded_binary_path

TIMEOUT_S = 5.0

# slack_sdk logs failed requests at ERROR; doctor reports them itself, on its one line.
QUIET_SLACK_LOG = "citebot.doctor.slack"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


# ---- configuration -------------------------------------------------------------------------
def check_configuration(settings: Settings) -> Check:
    problems: list[str] = settings.slack_credential_problems()
    mode = settings.slack_mode
    if settings.embedding_backend not in ("auto", "openai", "local"):
        problems.append(f"CITEBOT_EMBEDDINGS={settings.embedding_backend!r}: use auto, openai or local")
    if settings.weaviate_url and any(
        urlparse(u.strip()).scheme not in ("http", "https") for u in settings.weaviate_url.split(",")
    ):
        problems.append(f"WEAVIATE_URL={settings.weaviate_url!r} must start with http:// or https://")
    if not 0.0 <= settings.alpha <= 1.0:
        problems.append(f"CITEBOT_ALPHA={settings.alpha:g} must be between 0 and 1")
    if not TOP_K_MIN <= settings.top_k <= TOP_K_MAX:
        problems.append(f"CITEBOT_TOP_K must be from {TOP_K_MIN} to {TOP_K_MAX}")
    if not 0 <= settings.chunk_overlap_chars < settings.chunk_chars:
        problems.append("CITEBOT_CHUNK_OVERLAP must be at least 0 and smaller than CITEBOT_CHUNK_CHARS")
    for name, value in (
        ("CITEBOT_MAX_PDF_MB", settings.max_pdf_mb),
        ("CITEBOT_MAX_PAGES", settings.max_pages),
        ("CITEBOT_EMBEDDING_BATCH", settings.embedding_batch_size),
        ("CITEBOT_MODEL_TIMEOUT", settings.model_timeout_s),
        ("CITEBOT_DOWNLOAD_TIMEOUT", settings.download_timeout_s),
    ):
        if value <= 0:
            problems.append(f"{name} must be positive")
    if not 0 < settings.http_port < 65536:
        problems.append(f"CITEBOT_HTTP_PORT={settings.http_port} is not a port")
    if problems:
        return Check("configuration", False, "; ".join(problems))
    described = {
        "socket": "Slack Socket Mode",
        "http": f"Slack HTTP mode on port {settings.http_port}",
        "cli": "no Slack tokens: CLI only",
    }[mode]
    store = f"Weaviate at {settings.weaviate_url}" if settings.weaviate_url else "Weaviate Embedded"
    model = (
        "chat + embeddings via OpenAI-compatible endpoint"
        if settings.uses_openai_embeddings
        else (
            "local embeddings"
            + (", chat via OpenAI-compatible endpoint" if settings.has_llm else ", extractive answers (no OPENAI_API_KEY)")
        )
    )
    return Check("configuration", True, f"{described}; {store}; {model}")


# ---- Weaviate ------------------------------------------------------------------------------
def _get_json(url: str, api_key: str = "", timeout: float = TIMEOUT_S) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body.decode("utf-8", "replace")[:200]


def _reason(error: BaseException) -> str:
    """A short reason for a network failure ("[Errno 111] Connection refused", "timed out")."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return str(error.reason) or type(error).__name__
    return str(error) or type(error).__name__


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_weaviate(settings: Settings) -> Check:
    if not settings.weaviate_url:
        return _check_embedded(settings)
    from citebot.store import weaviate_nodes

    nodes = weaviate_nodes(settings)
    if len(nodes) > 1:  # a cluster: every node listed should answer (the bot fails over among them)
        checks = [_check_server(settings, node.url, node.grpc_host, node.grpc_port) for node in nodes]
        down = [c.detail for c in checks if not c.ok]
        if down:
            return Check("weaviate", False, f"{len(down)} of {len(nodes)} nodes not usable: " + "; ".join(down))
        return Check("weaviate", True, f"{len(nodes)} nodes: " + "; ".join(c.detail for c in checks))
    node = nodes[0] if nodes else None
    return _check_server(
        settings,
        node.url if node else settings.weaviate_url.rstrip("/"),
        node.grpc_host if node else "",
        node.grpc_port if node else settings.weaviate_grpc_port,
    )


def _check_server(settings: Settings, base: str, grpc_host: str, grpc_port: int) -> Check:
    try:
        status, _ = _get_json(f"{base}/v1/.well-known/ready")
    except Exception as error:  # noqa: BLE001 - reported, never raised
        return Check("weaviate", False, f"cannot reach {base}: {_reason(error)}")
    if status != 200:
        return Check("weaviate", False, f"{base}/v1/.well-known/ready answered {status} (not ready)")
    status, meta = _get_json(f"{base}/v1/meta", settings.weaviate_api_key)
    if status in (401, 403):
        return Check("weaviate", False, f"{base} refused /v1/meta ({status}): check WEAVIATE_API_KEY")
    if status != 200 or not isinstance(meta, dict):
        return Check("weaviate", False, f"{base}/v1/meta answered {status}")
    version = str(meta.get("version", "?"))
    notes: list[str] = []
    if version != WEAVIATE_VERSION:
        if _minor(version) != _minor(WEAVIATE_VERSION):
            return Check(
                "weaviate",
                False,
                f"{base} runs Weaviate {version}, citebot pins {WEAVIATE_VERSION}; "
                "run the pinned version (docker-compose.yaml)",
            )
        notes.append(f"citebot pins {WEAVIATE_VERSION}")
    host = urlparse(base).hostname or "localhost"
    if not settings.weaviate_is_cloud:  # Cloud: gRPC at grpc-<host>:443
        try:
            socket.create_connection((grpc_host or host, grpc_port), timeout=TIMEOUT_S).close()
        except OSError as error:
            return Check(
                "weaviate",
                False,
                f"{base} is up but gRPC {grpc_host or host}:{grpc_port} "
                f"is not reachable ({error}); check WEAVIATE_GRPC_PORT",
            )
    # The index records the embedding model it was built with; a different one is refused.
    from citebot.store import object_id

    meta_url = f"{base}/v1/objects/{quote(settings.collection_prefix)}Meta/{object_id('meta', 'embedding_model')}"
    status, recorded = _get_json(meta_url, settings.weaviate_api_key)
    from citebot.embeddings import embedding_model_id

    configured = embedding_model_id(settings)
    if status == 200 and isinstance(recorded, dict):
        built_with = str(recorded.get("properties", {}).get("value", ""))
        if built_with and built_with != configured:
            from citebot.embeddings import model_mismatch_advice

            return Check("weaviate", False, model_mismatch_advice(built_with, configured, settings.collection_prefix))
        notes.append(f"index {settings.collection_prefix}* uses {built_with}")
    else:
        notes.append(f"no index yet under prefix {settings.collection_prefix}")
    return Check("weaviate", True, f"{base} ready, version {version}" + "".join(f"; {n}" for n in notes))


def _check_embedded(settings: Settings) -> Check:
    data = Path(settings.data_dir)
    existing = next((p for p in (data, *data.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        return Check("weaviate", False, f"CITEBOT_DATA_DIR {data} is not writable")
    binary = embedded_binary_path(settings.weaviate_binary_dir)
    if binary.exists():
        return Check("weaviate", True, f"Weaviate Embedded {WEAVIATE_VERSION}: binary at {binary}; data in {data}")
    how = (
        "built with `python -m citebot.weaviate_server` (Go is installed)"
        if shutil.which("go")
        else "downloaded on first start (needs internet)"
    )
    return Check("weaviate", True, f"Weaviate Embedded {WEAVIATE_VERSION}: no binary at {binary} yet; it will be {how}")


# ---- Slack ---------------------------------------------------------------------------------
def check_slack(settings: Settings) -> Check:
    if not settings.slack_bot_token:
        return Check("slack", True, "skipped: no SLACK_BOT_TOKEN (CLI only)")
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    client = WebClient(
        settings.slack_bot_token,
        base_url=base_url,
        timeout=int(TIMEOUT_S),
        retry_handlers=[],
        logger=logs.silent(QUIET_SLACK_LOG),
    )
    try:
        auth = client.auth_test()
    except SlackApiError as error:
        return Check("slack", False, f"auth.test with SLACK_BOT_TOKEN: {error.response.get('error', error)}")
    except Exception as error:  # noqa: BLE001
        return Check("slack", False, f"cannot reach {base_url}: {_reason(error)}")
    who = f"@{auth.get('user', '?')} in {auth.get('team', '?')}"
    if settings.slack_app_token:
        # Socket Mode: the app-level token must be able to open a connection (the URL is not used).
        app_client = WebClient(
            settings.slack_app_token,
            base_url=base_url,
            timeout=int(TIMEOUT_S),
            retry_handlers=[],
            logger=logs.silent(QUIET_SLACK_LOG),
        )
        try:
            app_client.apps_connections_open(app_token=settings.slack_app_token)
        except SlackApiError as error:
            return Check(
                "slack",
                False,
                f"bot token ok ({who}) but apps.connections.open with SLACK_APP_TOKEN: {error.response.get('error', error)}",
            )
        except Exception as error:  # noqa: BLE001
            return Check("slack", False, f"cannot reach {base_url}: {_reason(error)}")
        return Check("slack", True, f"auth.test ok: {who}; app token can open Socket Mode connections")
    return Check("slack", True, f"auth.test ok: {who}")


# ---- models --------------------------------------------------------------------------------
def check_model_endpoint(settings: Settings) -> Check:
    import openai

    base = settings.openai_base_url or "https://api.openai.com/v1"
    client = openai.OpenAI(
        api_key=settings.openai_api_key or "unused",
        base_url=settings.openai_base_url or None,
        timeout=TIMEOUT_S,
        max_retries=0,
    )
    parts: list[str] = []
    try:
        listed = {model.id for model in client.models.list()}
    except openai.NotFoundError:
        listed = set()  # some compatible servers have no /models; the embedding request below still tests it
    except openai.AuthenticationError:
        return Check("model endpoint", False, f"{base} rejected OPENAI_API_KEY (401)")
    except openai.APIStatusError as error:
        return Check("model endpoint", False, f"{base}/models answered {error.status_code}")
    except openai.APIError as error:
        return Check("model endpoint", False, f"cannot reach {base}: {_reason(error.__cause__ or error)}")
    if settings.has_llm:
        if listed and settings.chat_model not in listed:
            return Check(
                "model endpoint",
                False,
                f"CITEBOT_CHAT_MODEL {settings.chat_model} is not offered by {base} (see its /models)",
            )
        parts.append(f"chat {settings.chat_model}")
    if settings.uses_openai_embeddings:
        model = settings.openai_embedding_model
        try:
            response = client.embeddings.create(model=model, input=["citebot doctor"])
            dims = len(response.data[0].embedding)
        except openai.APIStatusError as error:
            return Check("model endpoint", False, f"embedding with {model} failed: {error.status_code} {error.message}")
        except openai.APIError as error:
            return Check("model endpoint", False, f"embedding with {model} failed: {_reason(error.__cause__ or error)}")
        except (IndexError, AttributeError, TypeError) as error:
            return Check("model endpoint", False, f"embedding with {model}: malformed response ({error})")
        parts.append(f"embeddings {model} ({dims} dims)")
    return Check("model endpoint", True, f"{base}: " + ", ".join(parts))


def check_local_model(settings: Settings) -> Check:
    from citebot import embeddings
    from citebot.errors import ModelUnavailable

    missing = [m for m in ("onnxruntime", "onnx", "tokenizers", "numpy") if importlib.util.find_spec(m) is None]
    if missing:
        return Check("local embeddings", False, f"{', '.join(missing)} not installed; run scripts/setup.sh")
    try:
        embeddings.check_local_model_name(settings)
        embeddings.tokenizer_file()
        embeddings.verified_file(embeddings.weights_dir() / "model.safetensors", embeddings.WEIGHTS_SHA256)
    except ModelUnavailable as error:
        return Check("local embeddings", False, str(error))
    built = embeddings.cached_model_path(Path(settings.data_dir) / "models")
    state = f"int8 model at {built}" if built.is_file() else f"int8 model built on first use (seconds) into {built.parent}"
    return Check(
        "local embeddings", True, f"{embeddings.LOCAL_MODEL}: weights and tokenizer SHA-256 verified (offline); {state}"
    )


# ---- running and printing ------------------------------------------------------------------
def _guarded(name: str, check: Callable[[Settings], Check], settings: Settings) -> Check:
    try:
        return check(settings)
    except Exception as error:  # noqa: BLE001 - a check never raises
        return Check(name, False, f"check crashed: {type(error).__name__}: {error}")


def run_checks(settings: Settings) -> list[Check]:
    """All checks that apply to ``settings``, in a fixed order; never raises."""
    plan: list[tuple[str, Callable[[Settings], Check]]] = [
        ("configuration", check_configuration),
        ("weaviate", check_weaviate),
        ("slack", check_slack),
    ]
    if settings.has_llm or settings.uses_openai_embeddings:
        plan.append(("model endpoint", check_model_endpoint))
    if not settings.uses_openai_embeddings:
        plan.append(("local embeddings", check_local_model))
    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        futures = [pool.submit(_guarded, name, check, settings) for name, check in plan]
        return [future.result() for future in futures]


def format_checks(checks: list[Check]) -> str:
    """One line per check: ``✓ name  detail`` or ``✗ name  detail``."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        detail = " ".join(c.detail.split())  # one line, whatever the error text held
        lines.append(f"{'✓' if c.ok else '✗'} {c.name.ljust(width)}  {detail}")
    return "\n".join(lines)


def main(env: Mapping[str, str] | None = None) -> int:
    """``citebot doctor``: print the report; 0 when every check passed, else 1."""
    try:
        settings = Settings.from_env(dict(env) if env is not None else None)
    except SettingsError as error:
        print(format_checks([Check("configuration", False, str(error))]))
        return 1
    checks = run_checks(settings)
    print(format_checks(checks))
    return 0 if all(c.ok for c in checks) else 1
