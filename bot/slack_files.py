"""Download a PDF that someone shared in Slack, with the bot token, safely.

Only ``url_private_download`` from Slack's own file object is ever fetched (from the event, or from
``files.info`` when the event lacks it) — never a URL from message text — and only from Slack's
file hosts, so the bot token cannot be sent anywhere else. HTML answers (Slack's login page when
the token has no access), oversize bodies (checked while streaming), empty files and bodies
without the ``%PDF-`` signature each become a specific ``CitebotError``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from citebot.errors import DownloadFailed, EmptyFile, NotAPdf, PdfTooLarge

SLACK_FILE_HOST_SUFFIXES = (".slack.com", ".slack-edge.com", ".slack-gov.com")


def is_pdf(file: dict[str, Any]) -> bool:
    return (
        str(file.get("filetype", "")).lower() == "pdf"
        or str(file.get("mimetype", "")).lower() == "application/pdf"
        or str(file.get("name", "")).lower().endswith(".pdf")
    )


async def complete_file(client: AsyncWebClient, file: dict[str, Any]) -> dict[str, Any]:
    """The file object with its download URL (``files.info`` when the event carried only an id)."""
    if file.get("url_private_download") and file.get("name"):
        return file
    info = await client.files_info(file=file["id"])
    return dict(info["file"])


def _allowed(url: str, api_url: str) -> bool:
    target, api = urlparse(url), urlparse(api_url)
    if target.netloc and target.netloc == api.netloc and target.scheme == api.scheme:
        return True  # the configured Slack (e.g. an on-prem proxy or a test stand-in)
    host = target.hostname or ""
    return target.scheme == "https" and (host == "slack.com" or host.endswith(SLACK_FILE_HOST_SUFFIXES))


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


async def download_pdf(
    file: dict[str, Any], *, token: str, api_url: str, max_bytes: int, timeout_s: float,
) -> bytes:
    """The bytes of a Slack-hosted PDF, or a ``CitebotError`` saying why not."""
    name = file.get("name") or "the file"
    url = file.get("url_private_download") or ""
    if not url or not _allowed(url, api_url):
        raise DownloadFailed(f"I can't download {name}: Slack did not give me a download link for it.")
    declared = int(file.get("size") or 0)
    if declared > max_bytes:
        raise PdfTooLarge(f"{name} is {_mib(declared)}; the limit is {_mib(max_bytes)}.")
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}, max_redirects=3) as resp:
                if resp.status != 200:
                    raise DownloadFailed(f"Slack refused the download of {name} (HTTP {resp.status}). Try sharing it again.")
                if resp.content_type == "text/html":
                    raise DownloadFailed(
                        f"I can't access {name}: Slack sent a login page instead of the file. "
                        "Make sure I'm a member of this channel and the app has the `files:read` scope.")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > max_bytes:
                        raise PdfTooLarge(f"{name} is larger than the limit of {_mib(max_bytes)}.")
    except (aiohttp.ClientError, TimeoutError) as error:
        raise DownloadFailed(f"Downloading {name} from Slack failed ({type(error).__name__}). Try again.") from error
    if not body:
        raise EmptyFile(f"{name} is empty (0 bytes).")
    head = bytes(body[:1024])
    if b"%PDF-" not in head:
        if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
            raise DownloadFailed(f"I can't access {name}: Slack sent a web page instead of the file.")
        raise NotAPdf(f"{name} is not a PDF (it does not start with the %PDF- signature).")
    return bytes(body)
