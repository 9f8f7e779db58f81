"""all-MiniLM-L6-v2 as a clean ONNX graph, built from its fp32 safetensors without torch, then
quantised to int8 with onnxruntime (dynamic, per channel).

The graph is BERT as sentence-transformers runs it: embeddings (word + position + token type 0,
LayerNorm), six encoder layers (fused Q/K/V projection, 12 heads, exact GELU), mean pooling over
the attention mask, L2 normalisation. Inputs ``input_ids`` and ``attention_mask`` (int64,
[batch, tokens]); output ``embedding`` (float32, [batch, 384]).

``citebot.embeddings`` owns which weights are used and where the built file is cached; this module
only reads weights and writes graphs (when they change, bump ``citebot.embeddings.LOCAL_BUILD``).
"""

from __future__ import annotations

import json
import logging
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HIDDEN = 384
HEADS = 12
LAYERS = 6
LAYER_NORM_EPS = 1e-12
OPSET = 17

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    (header_len,) = struct.unpack("<Q", bytes(raw[:8]))
    header = json.loads(bytes(raw[8 : 8 + header_len]))
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        dtype = np.dtype(_DTYPES[spec["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(raw[base + start : base + end], dtype=dtype).reshape(spec["shape"]).astype(dtype.type)
    return tensors


def build_fp32_graph(weights: dict[str, np.ndarray]):
    """The fp32 ONNX model (an ``onnx.ModelProto``)."""
    from onnx import TensorProto, helper, numpy_helper

    inits: list = []
    nodes: list = []
    added: set[str] = set()

    def const(name: str, value: np.ndarray) -> str:
        if name not in added:  # shared scalars are added once
            added.add(name)
            inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def w(key: str) -> np.ndarray:
        return weights[key].astype(np.float32)

    def linear(x: str, prefix: str, out: str, weight: np.ndarray, bias: np.ndarray) -> str:
        # torch Linear stores [out, in]; MatMul wants [in, out].
        m = node("MatMul", [x, const(f"{prefix}.W", weight.T.astype(np.float32))], f"{out}.mm")
        return node("Add", [m, const(f"{prefix}.b", bias.astype(np.float32))], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node(
            "LayerNormalization",
            [x, const(f"{prefix}.g", w(f"{prefix}.weight")), const(f"{prefix}.beta", w(f"{prefix}.bias"))],
            out,
            axis=-1,
            epsilon=LAYER_NORM_EPS,
        )

    head_dim = HIDDEN // HEADS
    # --- embeddings: word + (position + token type 0), then LayerNorm ---------------------
    word = node("Gather", [const("word_embeddings", w("embeddings.word_embeddings.weight")), "input_ids"], "emb.word")
    pos_type = w("embeddings.position_embeddings.weight") + w("embeddings.token_type_embeddings.weight")[0]
    shape = node("Shape", ["input_ids"], "emb.shape")
    seq = node("Gather", [shape, const("one_index", np.array([1], dtype=np.int64))], "emb.seq")
    positions = node(
        "Slice",
        [const("pos_type_embeddings", pos_type), const("zero_index", np.array([0], dtype=np.int64)), seq],
        "emb.positions",
    )
    summed = node("Add", [word, positions], "emb.sum")
    hidden = layer_norm(summed, "embeddings.LayerNorm", "emb.out")
    # --- attention mask: 0 where attended, -10000 on padding, shaped [B, 1, 1, S] --------
    mask = node("Cast", ["attention_mask"], "mask.f", to=TensorProto.FLOAT)
    inverted = node("Sub", [const("one_f", np.array(1.0, dtype=np.float32)), mask], "mask.inv")
    bias = node("Mul", [inverted, const("neg_big", np.array(-10000.0, dtype=np.float32))], "mask.bias")
    bias4 = node("Unsqueeze", [bias, const("axes_1_2", np.array([1, 2], dtype=np.int64))], "mask.bias4")
    split_sizes = const("qkv_split", np.array([HIDDEN, HIDDEN, HIDDEN], dtype=np.int64))
    heads_shape = const("heads_shape", np.array([0, 0, HEADS, head_dim], dtype=np.int64))
    merged_shape = const("merged_shape", np.array([0, 0, HIDDEN], dtype=np.int64))
    scale = np.float32(1.0 / np.sqrt(head_dim))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        a = f"{p}.attention.self"
        # One projection for Q, K and V; the 1/sqrt(d) score scale is folded into Q.
        qkv_w = np.concatenate([w(f"{a}.query.weight") * scale, w(f"{a}.key.weight"), w(f"{a}.value.weight")], axis=0)
        qkv_b = np.concatenate([w(f"{a}.query.bias") * scale, w(f"{a}.key.bias"), w(f"{a}.value.bias")])
        qkv = linear(hidden, f"l{i}.qkv", f"l{i}.qkv", qkv_w, qkv_b)
        nodes.append(
            helper.make_node("Split", [qkv, split_sizes], [f"l{i}.q", f"l{i}.k", f"l{i}.v"], name=f"l{i}.split", axis=-1)
        )
        q = node("Transpose", [node("Reshape", [f"l{i}.q", heads_shape], f"l{i}.q4")], f"l{i}.qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [f"l{i}.k", heads_shape], f"l{i}.k4")], f"l{i}.kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [f"l{i}.v", heads_shape], f"l{i}.v4")], f"l{i}.vt", perm=[0, 2, 1, 3])
        scores = node("Add", [node("MatMul", [q, k], f"l{i}.scores"), bias4], f"l{i}.masked")
        probs = node("Softmax", [scores], f"l{i}.probs", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v], f"l{i}.ctx")], f"l{i}.ctxt", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, merged_shape], f"l{i}.ctx3")
        attn = linear(
            context,
            f"l{i}.attn_out",
            f"l{i}.attn",
            w(f"{p}.attention.output.dense.weight"),
            w(f"{p}.attention.output.dense.bias"),
        )
        h1 = layer_norm(node("Add", [attn, hidden], f"l{i}.res1"), f"{p}.attention.output.LayerNorm", f"l{i}.h1")
        inter = linear(
            h1, f"l{i}.inter", f"l{i}.inter", w(f"{p}.intermediate.dense.weight"), w(f"{p}.intermediate.dense.bias")
        )
        # Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))) (onnxruntime fuses it into one Gelu kernel).
        erf = node(
            "Erf", [node("Div", [inter, const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))], f"l{i}.g1")], f"l{i}.g2"
        )
        gelu = node(
            "Mul",
            [
                node("Mul", [inter, node("Add", [erf, "one_f"], f"l{i}.g3")], f"l{i}.g4"),
                const("half", np.array(0.5, np.float32)),
            ],
            f"l{i}.gelu",
        )
        out = linear(gelu, f"l{i}.out", f"l{i}.out", w(f"{p}.output.dense.weight"), w(f"{p}.output.dense.bias"))
        hidden = layer_norm(node("Add", [out, h1], f"l{i}.res2"), f"{p}.output.LayerNorm", f"l{i}.h2")
    # --- mean pooling over real tokens, then L2 normalisation ----------------------------
    mask3 = node("Unsqueeze", [mask, const("axis_2", np.array([2], dtype=np.int64))], "pool.mask3")
    total = node("ReduceSum", [node("Mul", [hidden, mask3], "pool.masked"), "one_index"], "pool.sum", keepdims=0)
    count = node("ReduceSum", [mask3, "one_index"], "pool.count", keepdims=0)
    count = node("Max", [count, const("min_count", np.array(1e-9, dtype=np.float32))], "pool.count_safe")
    mean = node("Div", [total, count], "pool.mean")
    norm = node("ReduceL2", [mean], "norm.l2", axes=[1], keepdims=1)  # axes: an attribute until opset 18
    norm = node("Max", [norm, const("min_norm", np.array(1e-12, dtype=np.float32))], "norm.safe")
    node("Div", [mean, norm], "embedding")

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="citebot")
    model.ir_version = 8
    return model


def weight_matmuls(model) -> list[str]:
    """The MatMul nodes whose second input is a weight: the ones quantised (the two activation x
    activation products of attention stay fp32)."""
    names = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in names]


@contextmanager
def _quiet_quantiser():
    """quantize_dynamic logs a pre-processing hint on the root logger (configuring it if it has no
    handler): keep it out of citebot's log."""
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder:
        root.addHandler(placeholder)

    def from_onnxruntime(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root.addFilter(from_onnxruntime)
    try:
        yield
    finally:
        root.removeFilter(from_onnxruntime)
        if placeholder:
            root.removeHandler(placeholder)


def build_int8(safetensors: str | Path, out: str | Path, fp32_out: str | Path | None = None) -> None:
    """Write the quantised model to ``out`` (and the fp32 graph to ``fp32_out`` if given): int8
    weights per output channel for every projection and the word-embedding table, activations
    quantised at run time (onnxruntime ``quantize_dynamic``)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = build_fp32_graph(read_safetensors(safetensors))
    onnx.checker.check_model(model)
    if fp32_out is not None:
        onnx.save(model, str(fp32_out))
    with _quiet_quantiser():
        quantize_dynamic(
            model,
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gather"],
            nodes_to_quantize=[*weight_matmuls(model), "emb.word"],
        )


def main(argv: list[str] | None = None) -> None:
    """``python -m citebot.minilm_onnx WEIGHTS.safetensors OUT.onnx``: citebot.embeddings builds the
    model in a child process, so the build's memory (and the onnx module) never stays in the bot."""
    import sys

    weights, out = (argv if argv is not None else sys.argv[1:])[:2]
    build_int8(weights, out)


if __name__ == "__main__":
    main()
