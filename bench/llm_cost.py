"""Section 4: LLM calls and tokens per question, counted at the stand-in OpenAI server.

The nine papers are indexed with the stand-in embedder in a fresh collection (so no chunk has a
cached summary). Each question is asked in answer mode, then in summary mode twice: cold (first
time those chunks are summarised) and warm (same question, summaries cached in Weaviate).
The counters are reset before every ask. Token counts are the stand-in's (words, not BPE).

The seed's design made one call per retrieved chunk plus one; its cost is shown next to ours
as ``sources + 1`` calls, where ``sources`` is the number of chunks the answer was given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import PAPERS_SCOPE, BenchEnv, ingest_papers, log


def run(env: BenchEnv) -> dict[str, Any]:
    from dataflows.app import Citebot

    labelled = json.loads(Path(__file__).with_name("labelled_questions.json").read_text())["questions"]
    # Questions over the papers this run indexed, spread over the documents.
    stems = {p.stem for p in env.papers()}
    questions = [q["question"] for q in labelled if q.get("doc") in stems][:: 2 if not env.quick else 3][:20]
    prefix = ingest_papers(env, "standin")  # section 2's collection when it ran: no summaries yet
    counter = env.counting
    rows: dict[str, list[dict[str, Any]]] = {"answer": [], "summary_cold": [], "summary_warm": []}
    with Citebot(env.settings(prefix, "standin", counting=True)) as bot:
        for question in questions:
            for label, mode in (("answer", "answer"), ("summary_cold", "summary"), ("summary_warm", "summary")):
                counter.reset()
                answer = bot.ask(question, PAPERS_SCOPE, mode=mode)
                sources = len(answer.citations) + len(answer.uncited)
                rows[label].append(
                    {
                        "calls": counter.chat_calls,
                        "prompt_tokens": counter.prompt_tokens,
                        "completion_tokens": counter.completion_tokens,
                        "sources": sources,
                    }
                )
    out: dict[str, Any] = {"questions": len(questions)}
    for label, items in rows.items():
        n = len(items)
        out[label] = {
            "calls_per_ask": round(sum(r["calls"] for r in items) / n, 2),
            "max_calls": max(r["calls"] for r in items),
            "prompt_tokens_per_ask": round(sum(r["prompt_tokens"] for r in items) / n, 1),
            "completion_tokens_per_ask": round(sum(r["completion_tokens"] for r in items) / n, 1),
            "sources_per_ask": round(sum(r["sources"] for r in items) / n, 2),
            "seed_design_calls_per_ask": round(sum(r["sources"] + 1 for r in items) / n, 2),
        }
        log(f"  {label}: {out[label]}")
    return out
