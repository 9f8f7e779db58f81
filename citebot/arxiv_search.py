"""arXiv by words (or by ids, for link previews): the Atom API's ``search_query=all:…`` and
``id_list``, through the ``arxiv`` client, as ``ArxivMatch`` values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import arxiv
import requests

from citebot.arxiv_ids import without_version
from citebot.errors import ArxivUnavailable, CitebotError

SEARCH_RESULTS = 5
_WORD = re.compile(r"[\w][\w.+-]*", re.UNICODE)


class EmptyArxivSearch(CitebotError):
    pass


@dataclass(frozen=True)
class ArxivMatch:
    arxiv_id: str  # without version
    title: str
    authors: tuple[str, ...]
    year: str
    first_line: str  # the abstract's first sentence


class TimeoutSession(requests.Session):
    """The arxiv package calls ``session.get(url)`` without a timeout; give every call one."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout_s)
        return super().request(*args, **kwargs)


def search_query(words: str) -> str:
    """``all:w1 AND all:w2 …`` for the words typed (operators and punctuation dropped)."""
    terms = [w for w in _WORD.findall(words) if w.upper() not in ("AND", "OR", "ANDNOT")]
    if not terms:
        raise EmptyArxivSearch("Say what to search for, e.g. `/arxiv search diffusion transformers`.")
    return " AND ".join(f"all:{t}" for t in terms[:12])


def _first_line(summary: str) -> str:
    text = " ".join(summary.split())
    sentence = re.split(r"(?<=[.!?])\s+", text, maxsplit=1)[0]
    return sentence[:300]


def find_papers(
    api_url: str, timeout_s: float, *, words: str = "", ids: tuple[str, ...] = (), limit: int = SEARCH_RESULTS
) -> list[ArxivMatch]:
    """The top ``limit`` papers matching ``words`` (arXiv's relevance order), or the papers ``ids``."""
    client = arxiv.Client(page_size=limit, delay_seconds=0.0, num_retries=2)
    client.query_url_format = api_url + "?{}"
    client._session = TimeoutSession(min(timeout_s, 30.0))
    search = arxiv.Search(query=search_query(words) if words else "", id_list=list(ids), max_results=limit)
    try:
        results = list(client.results(search))
    except (requests.RequestException, arxiv.ArxivError) as error:
        raise ArxivUnavailable("arXiv's API could not be reached; try again later.") from error
    return [
        ArxivMatch(
            arxiv_id=without_version(paper.get_short_id()),
            title=" ".join(paper.title.split()),
            authors=tuple(a.name for a in paper.authors),
            year=str(paper.published.year) if paper.published else "",
            first_line=_first_line(paper.summary or ""),
        )
        for paper in results
    ]
