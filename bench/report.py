"""The one table: every section's headline numbers, each with its target and whether it is met.

Rendered as a Markdown table so it can be pasted into docs/performance.md unchanged.
"""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str, str]  # section, metric, value, target, status


def _status(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def _ingest(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for embedder, label in (("standin", "stand-in OpenAI embedder"), ("minilm", "offline MiniLM")):
        c = r["citebot"].get(embedder)
        if not c:
            continue
        base = r["pypdf"][embedder]
        for name, what in (("all", "9 papers + 352-page book"), ("papers", "9 papers"), ("book", "352-page book")):
            if name not in c:
                continue
            x = c[name]
            target, ok = ("", None)
            if embedder == "standin":
                target, ok = "≥ 1.5× pypdf", x["vs_pypdf"] >= 1.5
            rows.append(
                (
                    "ingest",
                    f"{label}, {what}",
                    f"{x['pages_per_s']} pages/s, {x['chunks_per_s']} chunks/s = {x['vs_pypdf']}× pypdf "
                    f"({base[name]['pages_per_s']} pages/s)",
                    target,
                    _status(ok),
                )
            )
        key = "all" if "all" in c else "papers"
        s = c[key]["split_s"]
        rows.append(
            (
                "ingest",
                f"{label}, split (s, {key})",
                f"overview {s['overview']}; parse+chunk {s['read']} in the background, embedding waited {s['wait']}; "
                f"embed {s['embed']}, store {s['store']} (wait+embed+store overlapped: {s['embed+store']})",
                "",
                "",
            )
        )
        cpu = c[key].get("cpu_s")
        if cpu:
            rows.append(
                (
                    "ingest",
                    f"{label}, CPU seconds meanwhile ({key})",
                    ", ".join(f"{k} {v}" for k, v in cpu.items())
                    + f" = {round(sum(cpu.values()), 2)} s; pypdf alone {base[key].get('cpu_s')} s CPU; so on 2 free "
                    f"cores at most {c[key].get('cpu_bound_vs_pypdf')}× pypdf",
                    "",
                    "",
                )
            )
        if embedder == "minilm":
            ratio = round(c[key]["seconds"] / s["embed"], 3) if s["embed"] else None
            rows.append(
                (
                    "ingest",
                    f"{label}, ingest time ÷ embed time ({key})",
                    f"{c[key]['seconds']} s ÷ {s['embed']} s = {ratio}×",
                    "≈ 1× (≤ 1.1×)",
                    _status(ratio is not None and ratio <= 1.1),
                )
            )
    return rows


def _retrieval(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for size, x in r["sizes"].items():
        target = {100_000: 50, 1_000_000: 120}.get(int(size))
        built = f", built in {x['build_s']:.0f} s{' (reused)' if x.get('reused') else ''}" if target == 120 else ""
        rows.append(
            (
                "retrieval",
                f"Citebot.retrieve, second stage off, at {x['chunks']:,} chunks ({x['documents']} docs{built}) p50 / p95",
                f"{x['retrieve_p50_ms']} / {x['retrieve_p95_ms']} ms",
                f"p95 ≤ {target} ms" if target else "",
                _status(x["retrieve_p95_ms"] <= target) if target else "",
            )
        )
        if "second_stage_p50_ms" in x:
            rows.append(
                (
                    "retrieval",
                    f"Citebot.retrieve, second stage on (default), at {x['chunks']:,} chunks p50 / p95",
                    f"{x['second_stage_p50_ms']} / {x['second_stage_p95_ms']} ms",
                    "",
                    "",
                )
            )
        rows.append(
            (
                "retrieval",
                f"Weaviate alone at {x['chunks']:,} chunks p50 / p95 (no filter p50)",
                f"{x['weaviate_p50_ms']} / {x['weaviate_p95_ms']} ms ({x['weaviate_nofilter_p50_ms']} ms)",
                "",
                "",
            )
        )
        limit = 1.3 if int(size) >= 100_000 else 2
        rows.append(
            (
                "retrieval",
                f"retrieve (stage off) ÷ Weaviate's at {x['chunks']:,} chunks, p50 / p95",
                f"{x['overhead_p50']}× / {x['overhead_p95']}×",
                f"≤ {limit}×",
                _status(x["overhead_p50"] <= limit and x["overhead_p95"] <= limit),
            )
        )
        if "search_p50_ms" in x:
            rows.append(
                (
                    "retrieval",
                    f"Store.search alone (no query embedding) at {x['chunks']:,} chunks p50 / p95, ÷ Weaviate's",
                    f"{x['search_p50_ms']} / {x['search_p95_ms']} ms = "
                    f"{x['search_overhead_p50']}× / {x['search_overhead_p95']}×",
                    "",
                    "",
                )
            )
    return rows


def _llm(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for key, label, target in (
        ("answer", "answer mode", 1),
        ("summary_cold", "summary mode, cold cache", None),
        ("summary_warm", "summary mode, warm cache", 1),
    ):
        x = r[key]
        rows.append(
            (
                "llm cost",
                f"{label}: calls / prompt / completion tokens per ask",
                f"{x['calls_per_ask']} / {x['prompt_tokens_per_ask']:.0f} / {x['completion_tokens_per_ask']:.0f} "
                f"(seed design: {x['seed_design_calls_per_ask']} calls)",
                f"= {target} call" if target else "",
                _status(x["max_calls"] <= target) if target else "",
            )
        )
    return rows


def _memory(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for embedder, label in (("minilm", "offline MiniLM"), ("standin", "OpenAI embedder")):
        x = r.get(embedder)
        if not isinstance(x, dict):
            continue
        rows.append(
            (
                "memory",
                f"bot process ({label}): idle / peak in 352-page ingest / idle after",
                f"{x['main_idle_mb']} / {x['main_peak_mb']} / {x['main_after_ingest_mb']} MB",
                "peak ≤ 300 MB",
                _status(x["main_peak_mb"] <= 300),
            )
        )
        rows.append(
            (
                "memory",
                f"parsing workers ({label}): idle / peak (sum of {x['worker_processes']} processes)",
                f"{x['workers_idle_mb']} / {x['workers_peak_sum_mb']} MB",
                "",
                "",
            )
        )
    return rows


def _quality(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    targets = r["targets"]
    on, off = r["second_stage_on"], r["second_stage_off"]

    def ratio(x: dict[str, Any], key: str) -> str:
        return f"{x[key]:.0%}" if key in x else "–"

    for group, label in (
        ("all", "all questions"),
        ("single", "one paper"),
        ("multi", "two papers"),
        ("tuning", "tuning split"),
        ("held_out", "held-out split"),
    ):
        x, y = on.get(group), off.get(group)
        if not x:
            continue
        main = group == "all"
        rows.append(
            (
                "quality",
                f"{label} ({x['questions']}): hit@1 / hit@5 / MRR@10 (second stage off)",
                f"{x['hit@1']:.0%} / {x['hit@5']:.0%} / {x['mrr@10']:.2f} "
                f"({y['hit@1']:.0%} / {y['hit@5']:.0%} / {y['mrr@10']:.2f})",
                f"≥ {targets['hit@1']:.0%} / {targets['hit@5']:.0%} / {targets['mrr@10']}" if main else "",
                _status(
                    x["hit@1"] >= targets["hit@1"] and x["hit@5"] >= targets["hit@5"] and x["mrr@10"] >= targets["mrr@10"]
                )
                if main
                else "",
            )
        )
        if "cites_evidence_page" in x:
            rows.append(
                (
                    "quality",
                    f"{label}: answer cites the evidence page / evidence words in the answer / wrongly declined",
                    f"{ratio(x, 'cites_evidence_page')} / {ratio(x, 'evidence_words')} / {ratio(x, 'false_declines')}",
                    f"≥ {targets['cites_evidence_page']:.0%} / – / ≤ {targets['false_declines']:.0%}" if main else "",
                    _status(
                        x["cites_evidence_page"] >= targets["cites_evidence_page"]
                        and x["false_declines"] <= targets["false_declines"]
                    )
                    if main
                    else "",
                )
            )
    for group, label in (("unanswerable", "unanswerable"), ("tuning", "tuning split"), ("held_out", "held-out split")):
        x = on.get(group, {})
        if "unanswerable_declined" in x:
            main = group == "unanswerable"
            rows.append(
                (
                    "quality",
                    f"{label}: unanswerable questions declined",
                    ratio(x, "unanswerable_declined"),
                    f"≥ {targets['unanswerable_declined']:.0%}" if main else "",
                    _status(x["unanswerable_declined"] >= targets["unanswerable_declined"]) if main else "",
                )
            )
    a = on["all"]
    rows.append(
        (
            "quality",
            "warm Citebot.ask offline, second stage on: p50 / p95 (off: p50)",
            f"{a['ask_p50_ms']:.0f} / {a['ask_p95_ms']:.0f} ms ({off['all']['ask_p50_ms']:.0f} ms)",
            f"p50 ≤ {targets['ask_p50_ms']} ms",
            _status(a["ask_p50_ms"] <= targets["ask_p50_ms"]),
        )
    )
    ablation = r.get("without_signal_mrr@10")
    if ablation:

        def splits(v: Any) -> str:  # all / tuning / held-out (older results: all only)
            return (
                "/".join(f"{v[g]:.3f}" for g in ("all", "tuning", "held_out") if g in v)
                if isinstance(v, dict)
                else f"{v:.3f}"
            )

        on = r["second_stage_on"]
        baseline = splits({g: on[g]["mrr@10"] for g in ("all", "tuning", "held_out") if g in on})
        cells = ", ".join(f"{k} {splits(v)}" for k, v in ablation.items())
        rows.append(("quality", f"MRR@10 all/tuning/held-out with one signal removed (all on: {baseline})", cells, "", ""))
    return rows


def _acks(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for key, x in r["runs"].items():
        rows.append(
            (
                "acks",
                f"{key}: {x['n']} requests, p50 / p99 (max)",
                f"{x['p50_ms']} / {x['p99_ms']} ms ({x['max_ms']} ms)",
                "p99 ≤ 50 ms",
                _status(x["p99_ms"] <= 50),
            )
        )
    return rows


def _embedder(r: dict[str, Any]) -> list[Row]:
    speeds = r["chunks_per_s"]
    how = "measured" if r["earlier_measured"] else "estimated from fp32"
    return [
        (
            "embedder",
            f"offline MiniLM int8, chunks/s ({r['chunk_chars']}-char chunks, batch {r['batch']})",
            f"{speeds['citebot_int8']} chunks/s = {r['speedup_vs_earlier']}× the earlier fastembed int8 "
            f"({r['earlier_chunks_per_s']}, {how}); fp32 graph {speeds['fp32']}",
            "≥ 1.8× earlier",
            _status(r["speedup_vs_earlier"] >= 1.8),
        ),
        ("embedder", "first use: build the int8 model from the weights", f"{r['first_use_build_s']} s", "", ""),
    ]


def _cli(r: dict[str, Any]) -> list[Row]:
    return [
        (
            "cli",
            "`citebot ask` wall time, warm (after `citebot up`) / cold",
            f"{r['warm_median_s']} / {r['cold_median_s']} s",
            "warm ≤ 2 s",
            _status(r["warm_median_s"] <= 2.0),
        )
    ]


def _isolation(r: dict[str, Any]) -> list[Row]:
    idle, busy = r["idle"], r["saturated"]
    return [
        (
            "isolation",
            f"/ask to answer, ingestion idle: p50 / p95 ({idle['n']} asks)",
            f"{idle['p50_s']} / {idle['p95_s']} s",
            "",
            "",
        ),
        (
            "isolation",
            f"/ask to answer, {r['books']} × 352-page book being indexed: p50 / p95",
            f"{busy['p50_s']} / {busy['p95_s']} s ({r['ratio_p95']}× idle p95"
            + ("" if r["saturated_throughout"] else "; flood ended early")
            + ")",
            "p95 ≤ 2× idle",
            _status(r["ratio_p95"] <= 2),
        ),
        (
            "isolation",
            "paper shared in another channel during the flood: indexed after",
            f"{r['other_channel_share_s']} s ({r['books_indexed_before_it']} of {r['books']} books done by then; "
            f"all books {r['flood_s']} s)",
            "before the flood ends",
            _status(r["other_channel_share_s"] < r["flood_s"]),
        ),
    ]


BUILDERS = {
    "ingest": _ingest,
    "retrieval": _retrieval,
    "llm_cost": _llm,
    "memory": _memory,
    "quality": _quality,
    "acks": _acks,
    "embedder": _embedder,
    "cli": _cli,
    "isolation": _isolation,
}


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for name, build in BUILDERS.items():
        r = results.get(name)
        if r is None:
            continue
        if "error" in r:
            out.append((name, "section failed", r["error"][:200], "", "FAILED"))
            continue
        try:
            out.extend(build(r))
        except (KeyError, TypeError, ZeroDivisionError) as error:
            out.append((name, "report failed", f"{type(error).__name__}: {error}", "", "FAILED"))
    return out


def table(results: dict[str, Any]) -> str:
    header: Row = ("section", "metric", "value", "target", "status")
    body = rows(results)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(5)]

    def line(r: Row) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(r, widths)) + " |"

    meta = results.get("meta", {})
    lines = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)]
    lines.append("")
    lines.append(
        f"{'quick smoke run, ' if meta.get('quick') else ''}{meta.get('machine', '')}; "
        f"load average {meta.get('load_average_at_start')} → {meta.get('load_average_at_end')}; "
        f"total {meta.get('total_seconds')} s"
    )
    return "\n".join(lines)
