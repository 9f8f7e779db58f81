"""The local embedder: citebot's own ONNX graph of all-MiniLM-L6-v2, checked against a pure-numpy
forward pass of the same weights; the int8 build against the fp32 graph on real chunks; its cache
(built once, verified, rebuilt when damaged, shared by concurrent processes); and an index built by
the earlier model being refused with advice."""

from __future__ import annotations

import math
import multiprocessing
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from citebot import embeddings
from citebot.chunking import chunk_pages
from citebot.errors import EmbeddingModelMismatch, ModelUnavailable
from citebot.minilm_onnx import build_int8, read_safetensors
from citebot.pdf_text import extract_pages
from citebot.settings import Settings
from tests.paths import PDFS


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return read_safetensors(embeddings.weights_dir() / "model.safetensors")


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(embeddings.tokenizer_file()))
    tok.enable_truncation(embeddings.MINILM_MAX_TOKENS)
    tok.enable_padding()
    return tok


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("minilm")
    build_int8(embeddings.weights_dir() / "model.safetensors", out / "int8.onnx", fp32_out=out / "fp32.onnx")
    return out / "fp32.onnx", out / "int8.onnx"


@pytest.fixture(scope="module")
def real_chunks() -> list[str]:
    texts: list[str] = []
    for name in ("1706.03762.pdf", "1810.04805.pdf", "2005.11401.pdf"):
        data = (PDFS / name).read_bytes()
        texts += [c.text for c in chunk_pages("test", extract_pages(data, 0, 4), 1500, 225)][:10]
    return texts


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session, tokenizer, texts: list[str]) -> np.ndarray:
    enc = tokenizer.encode_batch(texts)
    feed = {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
    }
    return session.run(["embedding"], feed)[0]


def numpy_minilm(w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BERT + mean pooling + L2 norm, written out in float64 numpy (as sentence-transformers computes it)."""
    erf = np.frompyfunc(math.erf, 1, 1)
    w = {k: v.astype(np.float64) for k, v in w.items()}
    batch, seq = ids.shape

    def norm(x, p):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[p + ".weight"] + w[p + ".bias"]

    def dense(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    def heads(x):
        return x.reshape(batch, seq, 12, 32).transpose(0, 2, 1, 3)

    h = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:seq]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    h = norm(h, "embeddings.LayerNorm")
    bias = (1.0 - mask[:, None, None, :]) * -10000.0
    for i in range(6):
        p = f"encoder.layer.{i}"
        q, k, v = (heads(dense(h, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(32) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, 384)
        h1 = norm(dense(context, f"{p}.attention.output.dense") + h, f"{p}.attention.output.LayerNorm")
        x = dense(h1, f"{p}.intermediate.dense")
        x = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)).astype(np.float64))
        h = norm(dense(x, f"{p}.output.dense") + h1, f"{p}.output.LayerNorm")
    m = mask[:, :, None]
    pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_fp32_graph_matches_a_numpy_forward_pass(weights, tokenizer, models, real_chunks) -> None:
    texts = ["What is multi-head attention?", real_chunks[3]]  # one short text (padded), one truncated at 256
    enc = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    assert ids.shape[1] == embeddings.MINILM_MAX_TOKENS and mask[0].sum() < 20
    expected = numpy_minilm(weights, ids, mask.astype(np.float64))
    got = _run(_session(models[0]), tokenizer, texts)
    assert got.shape == (2, 384)
    assert np.abs(got - expected).max() < 1e-5


def test_int8_model_keeps_the_fp32_direction_on_real_chunks(tokenizer, models, real_chunks) -> None:
    fp32, int8 = _session(models[0]), _session(models[1])
    cosines = np.concatenate(
        [
            (_run(fp32, tokenizer, batch) * _run(int8, tokenizer, batch)).sum(1)
            for batch in (real_chunks[i : i + 8] for i in range(0, len(real_chunks), 8))
        ]
    )
    assert len(cosines) == len(real_chunks) >= 25
    assert cosines.min() > 0.99, cosines


def test_local_embedder_builds_once_then_reuses_and_rebuilds_a_damaged_file(tmp_path, real_chunks) -> None:
    settings = replace(Settings.from_env({}), data_dir=str(tmp_path))
    first = embeddings.LocalEmbedder(settings)
    built = embeddings.cached_model_path(tmp_path / "models")
    stamp = built.stat().st_mtime_ns
    vectors = first.embed_documents([real_chunks[0], "attention", real_chunks[1]])
    assert [round(float(np.linalg.norm(v)), 4) for v in vectors] == [1.0, 1.0, 1.0]
    # Batched (length-sorted) embedding returns each text's own vector, in order. (Dynamic int8
    # quantises activations per batch, so batch mates move a vector slightly, never its meaning.)
    alone = np.array([first.embed_query(t) for t in (real_chunks[0], "attention", real_chunks[1])])
    similarity = np.array(vectors) @ alone.T
    assert list(similarity.argmax(axis=1)) == [0, 1, 2] and similarity.diagonal().min() > 0.98, similarity

    embeddings.LocalEmbedder(settings)
    assert built.stat().st_mtime_ns == stamp  # reused, not rebuilt

    built.write_bytes(built.read_bytes()[:1000])  # a truncated file (disk full, killed copy ...)
    again = embeddings.LocalEmbedder(settings)
    assert np.allclose(again.embed_query(real_chunks[0]), alone[0], atol=1e-6)


def _build_in_child(cache_dir: str) -> str:
    return str(embeddings.ensure_local_model(Path(cache_dir)))


def test_concurrent_processes_build_one_model(tmp_path) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(_build_in_child, [str(tmp_path)] * 2)
    assert len(set(paths)) == 1
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert files == [Path(paths[0]).name, Path(paths[0]).name + ".sha256"]  # no temporary files left
    assert (tmp_path / files[1]).read_text().strip() == embeddings.sha256_file(Path(paths[0]))


def test_another_local_model_name_is_refused_with_what_to_do(tmp_path) -> None:
    settings = replace(Settings.from_env({}), data_dir=str(tmp_path), local_embedding_model="BAAI/bge-small-en-v1.5")
    with pytest.raises(ModelUnavailable, match="CITEBOT_EMBEDDINGS=openai"):
        embeddings.LocalEmbedder(settings)


def test_an_index_built_by_the_earlier_local_model_is_refused_with_advice(base_settings) -> None:
    from citebot.store import Store, connect

    client = connect(base_settings)
    try:
        store = Store(client, "EarlierModel")
        store.check_embedding_model("fastembed:all-MiniLM-L6-v2-int8")  # what citebot recorded before
        with pytest.raises(EmbeddingModelMismatch) as refused:
            store.check_embedding_model(embeddings.embedding_model_id(base_settings))
    finally:
        client.close()
    message = str(refused.value)
    assert "fastembed:all-MiniLM-L6-v2-int8" in message and "onnx:all-MiniLM-L6-v2" in message
    assert "CITEBOT_COLLECTION_PREFIX to a new name (e.g. EarlierModelV2)" in message
