"""Fetching a PDF over HTTP with aiohttp: a timeout, a size cap enforced while streaming, and
refusal of HTML pages (a login page means no access). Used for arXiv and for Slack files."""

from __future__ import annotations

import aiohttp

from citebot.errors import DownloadFailed, PdfTooLarge


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


async def fetch_pdf(
    url: str,
    max_bytes: int,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    name: str = "The PDF",
    no_access_hint: str = "",
) -> bytes:
    """The body at ``url`` (empty bodies and signatures are checked by ingestion)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
            async with session.get(url, headers=headers or {}, max_redirects=3) as response:
                if response.status == 404:
                    raise DownloadFailed(f"{name} was not found at its address (HTTP 404).")
                if response.status != 200:
                    raise DownloadFailed(f"The download of {name} failed with HTTP {response.status}; try again later.")
                if response.content_type == "text/html":
                    raise DownloadFailed(
                        f"I can't access {name}: the server sent a login page instead of the file. {no_access_hint}".strip()
                    )
                if response.content_length and response.content_length > max_bytes:
                    raise PdfTooLarge(f"{name} is {_mib(response.content_length)}; the limit is {_mib(max_bytes)}.")
                body = bytearray()
                async for block in response.content.iter_chunked(1 << 16):
                    body.extend(block)
                    if len(body) > max_bytes:
                        raise PdfTooLarge(f"{name} is larger than the limit of {_mib(max_bytes)}.")
                return bytes(body)
    except TimeoutError as error:
        raise DownloadFailed(f"The download of {name} timed out after {timeout_s:.0f} s; try again later.") from error
    except aiohttp.ClientError as error:
        raise DownloadFailed(f"The download of {name} failed ({type(error).__name__}); try again later.") from error
