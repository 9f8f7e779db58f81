"""Getting a PDF's bytes with the size limit applied before the work: over HTTP with aiohttp (a
timeout, Content-Length checked before the body, a size cap enforced while streaming, HTML login
pages refused; used for arXiv and Slack files) and from a local path (regular files only, size
from ``fstat`` before reading; used by the CLI)."""

from __future__ import annotations

import os
import stat

import aiohttp

from citebot.errors import DownloadFailed, NotARegularFile, PdfTooLarge


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
                    raise PdfTooLarge.of(name, response.content_length, max_bytes)
                body = bytearray()
                async for block in response.content.iter_chunked(1 << 16):
                    body.extend(block)
                    if len(body) > max_bytes:
                        raise PdfTooLarge.of(name, None, max_bytes)
                return bytes(body)
    except TimeoutError as error:
        raise DownloadFailed(f"The download of {name} timed out after {timeout_s:.0f} s; try again later.") from error
    except aiohttp.ClientError as error:
        raise DownloadFailed(f"The download of {name} failed ({type(error).__name__}); try again later.") from error


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_pdf_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a local file, refused before reading when it is not a regular file (a FIFO
    would block forever, /dev/zero never ends) or its size is over ``max_bytes`` (an 8 GB sparse
    file costs nothing to stat)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise DownloadFailed("no such file") from None
    except PermissionError:
        raise DownloadFailed("permission denied: citebot cannot read this file") from None
    except OSError as error:
        raise DownloadFailed(f"cannot open the file ({error.strerror or type(error).__name__})") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise NotARegularFile(f"this is {kind}, not a PDF file; give the path of a PDF file.")
        if info.st_size > max_bytes:
            raise PdfTooLarge.of("The file", info.st_size, max_bytes)
        data = file.read(max_bytes + 1)
        if len(data) > max_bytes:  # it grew while we read it
            raise PdfTooLarge.of("The file", None, max_bytes)
        return data
