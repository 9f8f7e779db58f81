"""Optional cross-encoder scores for the second ranking stage: a local ONNX cross-encoder
(fastembed, from a model folder on disk, never downloaded) or an OpenAI-compatible ``/rerank``
endpoint (vLLM, Jina, Cohere-style: ``{"model", "query", "documents"}`` →
``{"results": [{"index", "relevance_score"}]}``). Without either, the second stage ranks with
local signals only (dataflows/retrieval.py)."""

from __future__ import annotations

import json
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path

from citebot.errors import ModelUnavailable
from citebot.settings import Settings


class Reranker(ABC):
    model_id: str

    @abstractmethod
    def scores(self, query: str, texts: list[str]) -> list[float]:
        """One relevance score per text, higher is more relevant."""


class EndpointReranker(Reranker):
    def __init__(self, settings: Settings) -> None:
        self.url = settings.rerank_url
        self.model = settings.rerank_model
        self.model_id = f"endpoint:{self.model}"
        self.key = settings.openai_api_key
        self.timeout = settings.model_timeout_s

    def scores(self, query: str, texts: list[str]) -> list[float]:
        body = json.dumps({"model": self.model, "query": query, "documents": texts}).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                results = json.loads(response.read())["results"]
        except (OSError, ValueError, KeyError) as error:
            raise ModelUnavailable(f"The rerank endpoint failed ({type(error).__name__}); try again in a minute.") from error
        out = [0.0] * len(texts)
        for item in results:
            out[int(item["index"])] = float(item.get("relevance_score", item.get("score", 0.0)))
        return out


class LocalCrossEncoder(Reranker):
    """A cross-encoder ONNX export in a local folder (model.onnx + tokenizer files)."""

    def __init__(self, settings: Settings) -> None:
        from fastembed.rerank.cross_encoder import TextCrossEncoder

        path = Path(settings.rerank_model_path)
        name = f"citebot-local/{path.name}"
        self.model_id = f"local:{path.name}"
        if name not in {m["model"] for m in TextCrossEncoder.list_supported_models()}:
            TextCrossEncoder.add_custom_model(
                model=name,
                sources=None,
                model_file="model.onnx",
                description="local cross-encoder",
                license="",
                size_in_gb=0,
            )
        self._model = TextCrossEncoder(name, specific_model_path=str(path))

    def scores(self, query: str, texts: list[str]) -> list[float]:
        return [float(s) for s in self._model.rerank(query, texts)]


def build_reranker(settings: Settings) -> Reranker | None:
    if settings.rerank_url:
        return EndpointReranker(settings)
    if settings.rerank_model_path:
        return LocalCrossEncoder(settings)
    return None
