"""arXiv dataflow: an ID → metadata (the ``arxiv`` package) → PDF bytes (aiohttp).

Combined with ``pdf_ingestion`` it cuts in at that module's inputs ``pdf_bytes`` and
``source_metadata``, so a paper takes the very same path as a shared PDF.

Inputs: arxiv_id_text, arxiv_api_url, arxiv_pdf_url, arxiv_abs_url, download_timeout_s, max_pdf_bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import arxiv
import requests

from citebot.arxiv_ids import normalise_arxiv_id, without_version
from citebot.arxiv_search import TimeoutSession
from citebot.downloads import fetch_pdf
from citebot.errors import ArxivNotFound, ArxivUnavailable


def arxiv_id(arxiv_id_text: str) -> str:
    """The normalised ID (raises InvalidArxivId for anything else)."""
    return normalise_arxiv_id(arxiv_id_text)


def arxiv_metadata(arxiv_id: str, arxiv_api_url: str, download_timeout_s: float) -> dict[str, Any]:
    """Title, authors and abstract from the arXiv API."""
    client = arxiv.Client(page_size=1, delay_seconds=0.0, num_retries=2)
    client.query_url_format = arxiv_api_url + "?{}"
    client._session = TimeoutSession(min(download_timeout_s, 30.0))
    try:
        results = list(client.results(arxiv.Search(id_list=[arxiv_id], max_results=1)))
    except arxiv.HTTPError as error:
        if error.status == 400:
            raise ArxivNotFound(f"arXiv does not recognise `{arxiv_id}`.") from error
        raise ArxivUnavailable(f"arXiv's API failed (HTTP {error.status}) for `{arxiv_id}`; try again later.") from error
    except (requests.RequestException, arxiv.ArxivError) as error:
        raise ArxivUnavailable(f"arXiv's API could not be reached for `{arxiv_id}`; try again later.") from error
    if not results:
        raise ArxivNotFound(f"arXiv has no paper `{arxiv_id}`.")
    paper = results[0]
    return {
        "title": paper.title,
        "authors": [a.name for a in paper.authors],
        "summary": paper.summary,
        "published": paper.published.isoformat() if paper.published else "",
    }


def source_metadata(arxiv_id: str, arxiv_metadata: dict[str, Any], arxiv_abs_url: str) -> dict[str, Any]:
    """What the ingestion dataflow records about the paper."""
    return {
        "title": arxiv_metadata["title"],
        "authors": arxiv_metadata["authors"],
        "arxiv_id": without_version(arxiv_id),
        "link": arxiv_abs_url.format(id=arxiv_id),
    }


def pdf_bytes(
    arxiv_id: str, arxiv_metadata: dict[str, Any], arxiv_pdf_url: str, download_timeout_s: float, max_pdf_bytes: int
) -> bytes:
    """The paper's PDF (only fetched once its metadata exists)."""
    return asyncio.run(
        fetch_pdf(arxiv_pdf_url.format(id=arxiv_id), max_pdf_bytes, download_timeout_s, name=f"The PDF of {arxiv_id}")
    )
