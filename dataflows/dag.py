"""Render the Hamilton dataflows (as the drivers are built) to image files."""

from __future__ import annotations

from pathlib import Path

from citebot.errors import CitebotError
from dataflows.app import NodeTimer, build_drivers


def render_dataflows(out_dir: Path, fmt: str = "png") -> list[Path]:
    try:
        import graphviz  # noqa: F401
    except ImportError:
        raise CitebotError(
            "rendering needs the graphviz package: pip install 'citebot[dag]' "
            "(and the Graphviz `dot` program, e.g. apt-get install graphviz)"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    drivers = build_drivers(NodeTimer(), "llm")
    drivers["answer_offline"] = build_drivers(NodeTimer(), "extractive")["answer"]
    for name, dr in drivers.items():
        target = out_dir / name
        try:
            dr.display_all_functions(
                str(target), render_kwargs={"format": fmt, "view": False}, graphviz_kwargs={"graph_attr": {"rankdir": "TB"}}
            )
        except Exception as error:
            raise CitebotError(f"rendering failed ({error}); is Graphviz `dot` installed?") from error
        written.append(target.with_suffix(f".{fmt}"))
    return written
