"""arXiv identifiers: new style (2301.01234, optional vN), old style (hep-th/9901001),
with or without an ``arXiv:`` prefix or an abs/pdf URL around them."""

from __future__ import annotations

import re

from citebot.errors import InvalidArxivId, TooManyIds

# arXiv papers one request (`/arxiv`, `citebot arxiv`, ``Citebot.ingest_arxiv``) may add.
MAX_IDS_PER_REQUEST = 10

_NEW = r"\d{4}\.\d{4,5}(?:v\d+)?"
_OLD = r"[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?"
_ID = re.compile(rf"^(?:{_NEW}|{_OLD})$")
_URL = re.compile(r"^(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/(?P<id>.+?)(?:\.pdf)?/?$", re.I)


def normalise_arxiv_id(text: str) -> str:
    raw = text.strip().strip("<>")
    match = _URL.match(raw)
    if match:
        raw = match.group("id")
    if raw.lower().startswith("arxiv:"):
        raw = raw[6:]
    if not _ID.match(raw):
        shown = text.strip()[:60]
        raise InvalidArxivId(f"`{shown}` is not an arXiv ID (expected e.g. 1706.03762, 2301.01234v2 or hep-th/9901001).")
    return raw


def without_version(arxiv_id: str) -> str:
    return re.sub(r"v\d+$", "", arxiv_id)


def check_id_count(ids: list[str] | tuple[str, ...]) -> None:
    """Refuse more than ``MAX_IDS_PER_REQUEST`` IDs at once (10,000 once ran for many minutes)."""
    if len(ids) > MAX_IDS_PER_REQUEST:
        raise TooManyIds(
            f"That is {len(ids):,} arXiv IDs; I add at most {MAX_IDS_PER_REQUEST} per request. Send them in smaller groups."
        )
