"""Text from outside (PDF metadata, page text, questions, file names) made safe to store and show:
lone UTF-16 surrogates replaced, control characters removed, lengths capped."""

from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"
# Title, author names, file names: longer values are cut (a 40 MB author field once broke a
# whole channel's document list).
MAX_FIELD_CHARS = 300
MAX_AUTHORS = 100

_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0/C1 controls, DEL, and bidi overrides/isolates that can disguise text.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def without_surrogates(text: str) -> str:
    """Lone surrogates (undecodable bytes, broken ToUnicode maps) become U+FFFD; they cannot be
    encoded as UTF-8, so Weaviate, tokenizers and terminals would fail on them."""
    return _SURROGATE.sub(REPLACEMENT, text)


def clean_field(value: object, max_chars: int = MAX_FIELD_CHARS) -> str:
    """One line of metadata: surrogates replaced, terminal escape sequences removed, NFKC, control
    characters dropped, whitespace
    collapsed, at most ``max_chars`` characters (cut before normalising, so a huge value costs
    nothing)."""
    text = _ESCAPE_SEQUENCE.sub("", without_surrogates(str(value or "")[: max_chars * 4]))
    text = _CONTROLS.sub(" ", unicodedata.normalize("NFKC", text))
    return " ".join(text.split())[:max_chars]


def clean_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Author names: each cleaned, empty ones dropped, at most ``MAX_AUTHORS``."""
    cleaned = (clean_field(name) for name in list(names)[: MAX_AUTHORS * 2])
    return [name for name in cleaned if name][:MAX_AUTHORS]


_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Text that cannot move the cursor, recolour, retitle or rewrite a terminal: escape
    sequences and control characters removed (newlines and tabs kept), surrogates replaced."""
    return _TERMINAL_CONTROLS.sub("", _ESCAPE_SEQUENCE.sub("", without_surrogates(text)))
