"""Section 6: retrieval quality on bench/labelled_questions.json, with the offline MiniLM model.

For each chunk size (overlap 15%) the nine papers are indexed once (own collection prefix) and
every alpha is run against that index with ``Citebot.retrieve`` (top 10). A retrieved chunk hits
when it belongs to the labelled paper and contains the labelled passage — or at least 60% of the
passage's words in order (the passage may straddle a chunk boundary). Reported: hit@1, hit@5 and
MRR@10. At the defaults, answers are also generated with the stand-in LLM (which cites the
sources it is given) and we count how often the cited sources include the passage.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from bench.common import PAPERS_SCOPE, PDFS, BenchEnv, ingest_papers, log

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
CHUNK_SIZES = (500, 800, 1000, 1500)
QUICK_ALPHAS = (0.5, 1.0)
QUICK_SIZES = (1000,)
TOP = 10
IN_ORDER_FRACTION = 0.6
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two word lists."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def hits(chunk_text: str, passage: str) -> bool:
    if " ".join(passage.split()) in " ".join(chunk_text.split()):
        return True
    p = words(passage)
    return bool(p) and _lcs(p, words(chunk_text)) >= IN_ORDER_FRACTION * len(p)


def load_questions(env: BenchEnv) -> list[dict[str, Any]]:
    questions = json.loads(Path(__file__).with_name("labelled_questions.json").read_text())["questions"]
    stems = {p.stem for p in env.papers()}
    return [q for q in questions if q["doc"] in stems]


def doc_ids() -> dict[str, str]:
    return {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in PDFS}


def _rank(chunks: list[Any], q: dict[str, Any], ids: dict[str, str]) -> int | None:
    for rank, chunk in enumerate(chunks[:TOP], start=1):
        if chunk.chunk.document_id == ids[q["doc"]] and hits(chunk.chunk.text, q["passage"]):
            return rank
    return None


def run(env: BenchEnv) -> dict[str, Any]:
    from dataflows.app import Citebot

    questions = load_questions(env)
    ids = doc_ids()
    sizes = QUICK_SIZES if env.quick else CHUNK_SIZES
    alphas = QUICK_ALPHAS if env.quick else ALPHAS
    grid: dict[str, dict[str, Any]] = {}
    for size in sizes:
        overlap = round(size * 0.15)
        log(f"quality: chunk size {size} (overlap {overlap})")
        prefix = ingest_papers(env, "minilm", size, overlap)
        settings = env.settings(prefix, "minilm", chunk_chars=size, chunk_overlap_chars=overlap)
        with Citebot(settings) as bot:
            chunk_count = sum(d.chunks for d in bot.documents(PAPERS_SCOPE))
            for alpha in alphas:
                ranks = [
                    _rank(bot.retrieve(q["question"], PAPERS_SCOPE, top_k=TOP // 2, alpha=alpha), q, ids) for q in questions
                ]
                n = len(ranks)
                row = {
                    "chunk_chars": size,
                    "alpha": alpha,
                    "chunks": chunk_count,
                    "hit@1": round(sum(r == 1 for r in ranks) / n, 3),
                    "hit@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 3),
                    "mrr@10": round(sum(1 / r for r in ranks if r) / n, 3),
                }
                grid[f"{size}/{alpha}"] = row
                log(f"  {row}")
    best = max(grid.values(), key=lambda r: (r["mrr@10"], r["hit@5"]))
    defaults = env.base
    out: dict[str, Any] = {
        "questions": len(questions),
        "grid": list(grid.values()),
        "best": best,
        "current_defaults": {
            "chunk_chars": defaults.chunk_chars,
            "chunk_overlap_chars": defaults.chunk_overlap_chars,
            "alpha": defaults.alpha,
            "top_k": defaults.top_k,
        },
        "at_defaults": grid.get(f"{defaults.chunk_chars}/{defaults.alpha}"),
    }
    out["citations"] = _citations(env, questions, ids)
    return out


def _citations(env: BenchEnv, questions: list[dict[str, Any]], ids: dict[str, str]) -> dict[str, Any]:
    """At the default settings: does an answer's citation list include the labelled passage?"""
    from dataflows.app import Citebot

    d = env.base
    prefix = ingest_papers(env, "minilm", d.chunk_chars, d.chunk_overlap_chars)
    cited = given = grounded = 0
    with Citebot(env.settings(prefix, "minilm+llm")) as bot:
        for q in questions:
            answer = bot.ask(q["question"], PAPERS_SCOPE)
            grounded += answer.grounded

            def passage_in(citations: list[Any]) -> bool:
                for c in citations:
                    if c.document_id != ids[q["doc"]]:
                        continue
                    if hits(c.passage.chunk.text, q["passage"]):
                        return True
                return False

            cited += passage_in(answer.citations)
            given += passage_in(answer.citations + answer.uncited)
    n = len(questions)
    out = {
        "questions": n,
        "passage_cited": round(cited / n, 3),
        "passage_among_sources": round(given / n, 3),
        "grounded_answers": round(grounded / n, 3),
    }
    log(f"  citations at defaults: {out}")
    return out
