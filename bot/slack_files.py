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

from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from citebot.downloads import fetch_pdf
from citebot.errors import DownloadFailed, PdfTooLarge

SLACK_FILE_HOST_SUFFIXES = (".slack.com", ".slack-edge.com", ".slack-gov.com")
EXTERNAL_SERVICES = {"gdrive": "Google Drive", "dropbox": "Dropbox", "box": "Box", "onedrive": "OneDrive"}


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


async def download_pdf(
    file: dict[str, Any],
    *,
    token: str,
    api_url: str,
    max_bytes: int,
    timeout_s: float,
) -> bytes:
    """The bytes of a Slack-hosted file, or a ``CitebotError`` saying why not (ingestion then
    checks that they are a PDF)."""
    name = file.get("name") or "the file"
    if file.get("is_external"):
        raise DownloadFailed(messages.external_file_text(name, EXTERNAL_SERVICES.get(file.get("external_type") or "", "")))
    url = file.get("url_private_download") or ""
    if not url or not _allowed(url, api_url):
        raise DownloadFailed(f"I can't download {name}: Slack did not give me a download link for it.")
    declared = int(file.get("size") or 0)
    if declared > max_bytes:
        raise PdfTooLarge.of(name, declared, max_bytes)
    return await fetch_pdf(
        url,
        max_bytes,
        timeout_s,
        headers={"Authorization": f"Bearer {token}"},
        name=name,
        no_access_hint="Make sure I'm a member of this channel and the app has the `files:read` scope.",
    )
