"""Page texts → overlapping chunks that know which pages they span."""

from __future__ import annotations

import re

from citebot.domain import Chunk
from citebot.pdf_text import PageText

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def sentences(text: str) -> list[str]:
    flat = re.sub(r"\s*\n\s*", " ", text).strip()
    return [s for s in _SENTENCE_END.split(flat) if s.strip()]


def _units(pages: list[PageText], size: int) -> list[tuple[str, int]]:
    """Sentences tagged with their page; sentences longer than a chunk are cut."""
    units = []
    for page in pages:
        for sentence in sentences(page.text):
            while len(sentence) > size:
                cut = sentence.rfind(" ", 0, size)
                cut = cut if cut > size // 2 else size
                units.append((sentence[:cut].strip(), page.number))
                sentence = sentence[cut:].strip()
            if sentence:
                units.append((sentence, page.number))
    return units


def chunk_pages(document_id: str, pages: list[PageText], size: int, overlap: int) -> list[Chunk]:
    units = _units(pages, size)
    chunks: list[Chunk] = []
    current: list[tuple[str, int]] = []
    length = 0
    fresh = 0  # units in `current` not already emitted in the previous chunk

    def emit() -> None:
        chunks.append(
            Chunk(
                document_id=document_id,
                index=len(chunks),
                text=" ".join(u[0] for u in current),
                page_start=current[0][1],
                page_end=current[-1][1],
            )
        )

    for unit in units:
        if current and length + len(unit[0]) + 1 > size and fresh:
            emit()
            kept: list[tuple[str, int]] = []
            kept_length = 0
            for previous in reversed(current):
                if kept_length + len(previous[0]) > overlap:
                    break
                kept.insert(0, previous)
                kept_length += len(previous[0]) + 1
            current, length, fresh = kept, kept_length, 0
        current.append(unit)
        length += len(unit[0]) + 1
        fresh += 1
    if current and fresh:
        emit()
    return chunks
