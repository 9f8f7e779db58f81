"""Fetching a PDF over HTTP with aiohttp: a timeout, a size cap enforced while streaming, and
refusal of HTML pages (a login page means no access)."""

from __future__ import annotations

import asyncio

import aiohttp

from citebot.errors import DownloadFailed, PdfTooLarge


async def fetch_pdf(url: str, max_bytes: int, timeout_s: float, headers: dict[str, str] | None = None,
                    session: aiohttp.ClientSession | None = None) -> bytes:
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.get(url, headers=headers or {}, timeout=aiohttp.ClientTimeout(total=timeout_s),
                               allow_redirects=True) as response:
            if response.status == 404:
                raise DownloadFailed("The PDF was not found at its address (HTTP 404).")
            if response.status >= 400:
                raise DownloadFailed(f"The PDF download failed with HTTP {response.status}; try again later.")
            if "text/html" in response.headers.get("Content-Type", ""):
                raise DownloadFailed("The download returned a web page instead of the PDF: citebot has no access "
                                     "to that file.")
            if response.content_length and response.content_length > max_bytes:
                raise PdfTooLarge(f"The PDF is {response.content_length / 2**20:.1f} MiB; "
                                  f"the limit is {max_bytes / 2**20:.0f} MiB.")
            body = bytearray()
            async for block in response.content.iter_chunked(1 << 16):
                body.extend(block)
                if len(body) > max_bytes:
                    raise PdfTooLarge(f"The PDF is larger than the {max_bytes / 2**20:.0f} MiB limit.")
            return bytes(body)
    except asyncio.TimeoutError as error:
        raise DownloadFailed(f"The PDF download timed out after {timeout_s:.0f} s; try again later.") from error
    except aiohttp.ClientError as error:
        raise DownloadFailed(f"The PDF download failed ({type(error).__name__}); try again later.") from error
    finally:
        if own:
            await session.close()
