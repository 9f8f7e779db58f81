"""Reliability & security suite (issue #6): shared helpers.

Every test records what it measured with the ``figures`` fixture; at the end of the session the
figures are merged into ``tests/reliability/figures.json`` (docs/reliability.md quotes them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIGURES_PATH = Path(__file__).resolve().parent / "figures.json"
_figures: dict[str, dict[str, Any]] = {}


class Figures:
    """``figures.record("section", key=value, ...)``: merged into figures.json at session end."""

    def record(self, section: str, **values: Any) -> None:
        _figures.setdefault(section, {}).update(values)

    def add(self, section: str, key: str, amount: int | float) -> None:
        entry = _figures.setdefault(section, {})
        entry[key] = entry.get(key, 0) + amount


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    yield Figures()
    if not _figures:
        return
    try:
        previous = json.loads(FIGURES_PATH.read_text())
    except (OSError, ValueError):
        previous = {}
    previous.update(_figures)
    previous["_written_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    FIGURES_PATH.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
