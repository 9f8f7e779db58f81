"""PDFs shared in Slack: indexed with a reply in the file's thread; hostile files get specific replies."""

from __future__ import annotations

import pytest

from tests.bot.harness import ATTENTION, Driver, new_channel, share_file, thread_texts, wait_quiet
from tests.paths import NASTY
from tests.standins.slack_server import SlackStandIn


def test_shared_pdf_is_indexed_once_with_progress_reactions(driver: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack, "C" if driver.mode == "http" else "G")
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "1706.03762.pdf")
    if channel.startswith("G"):
        payload["event"]["channel_type"] = "group"
    driver.deliver(payload)
    # file_shared for the same upload, and a Slack retry of the message event: no double work.
    driver.deliver(slack.file_shared_event(channel, message["files"][0]["id"], user="U0USER1"))
    driver.deliver(payload, retry=1)
    reply = slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "Attention" in t], timeout=180)
    assert "15 pages" in reply[0] and "chunks" in reply[0] and "/ask" in reply[0]
    slack.wait_for(lambda: "white_check_mark" in slack.reactions_on(channel, message["ts"]))
    wait_quiet(slack)
    assert len(slack.thread(channel, message["ts"])) == 1
    assert slack.reactions_on(channel, message["ts"]) == ["white_check_mark"]
    downloads = [r for r in slack.requests if r.path.startswith(f"/files-pri/T111-{message['files'][0]['id']}/")]
    assert len(downloads) == 1 and downloads[0].headers["Authorization"] == f"Bearer {slack.bot_token}"


def test_same_pdf_again_is_recognised_as_already_indexed(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    for _ in range(2):
        message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "attention.pdf")
        http.deliver(payload)
        slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]), timeout=180)
    assert "already indexed" in thread_texts(slack, channel, message["ts"])[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("encrypted_libreoffice-writer-password.pdf", "password"),
        ("scanned_scan-bad.pdf", "no extractable text"),
        ("imageonly_imagemagick-CCITTFaxDecode.pdf", "no extractable text"),
        ("malformed_truncated_bug1020226.pdf", "damaged"),
    ],
)
def test_hostile_pdfs_get_specific_replies(http: Driver, slack: SlackStandIn, name: str, expected: str) -> None:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, (NASTY / name).read_bytes(), name)
    http.deliver(payload)
    texts = slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]), timeout=60)
    assert expected in texts[0].lower() and texts[0].startswith(":x:")
    slack.wait_for(lambda: "x" in slack.reactions_on(channel, message["ts"]))


def test_empty_and_fake_pdfs(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    empty, payload = share_file(slack, channel, b"", "empty.pdf")
    http.deliver(payload)
    assert "empty" in slack.wait_for(lambda: thread_texts(slack, channel, empty["ts"]))[0]
    fake, payload = share_file(slack, channel, b"GIF89a not a pdf at all", "fake.pdf")
    http.deliver(payload)
    assert "not a PDF" in slack.wait_for(lambda: thread_texts(slack, channel, fake["ts"]))[0]


def test_login_page_instead_of_file_gets_a_specific_reply(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "locked.pdf", always_html=True)
    http.deliver(payload)
    text = slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]))[0]
    assert "login page" in text and "files:read" in text


def test_oversized_pdf_is_refused_before_download(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, ATTENTION.read_bytes(), "big.pdf")
    payload["event"]["files"][0]["size"] = 10 * 1024**3
    http.deliver(payload)
    assert "limit" in slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]))[0]


def test_non_pdf_is_ignored(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, b"\x89PNG\r\n\x1a\n" + b"0" * 100, "file.png")
    http.deliver(payload)
    http.deliver(slack.file_shared_event(channel, message["files"][0]["id"]))
    wait_quiet(slack)
    assert slack.thread(channel, message["ts"]) == []
    assert slack.reactions_on(channel, message["ts"]) == []
    assert not [r for r in slack.requests if message["files"][0]["id"] in r.path]


def test_file_shared_alone_is_enough(http: Driver, slack: SlackStandIn) -> None:
    """When only file_shared arrives (e.g. message events not subscribed), files.info supplies the rest."""
    channel = new_channel(slack)
    file = slack.add_file((NASTY / "malformed_truncated_bug1020226.pdf").read_bytes(), "trunc.pdf", user="U0USER1")
    message = slack.user_message(channel, "U0USER1", "", files=[file])
    http.deliver(slack.file_shared_event(channel, file["id"]))
    assert "damaged" in slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]))[0]


def test_urls_in_message_text_are_never_fetched(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, b"", "x.pdf")
    payload["event"]["files"][0].pop("url_private_download")
    payload["event"]["text"] = f"<{slack.url}/evil.pdf>"
    http.deliver(payload)
    slack.wait_for(lambda: thread_texts(slack, channel, message["ts"]))
    assert not [r for r in slack.requests if "evil" in r.path]
    assert slack.calls("files.info")  # the download URL came from Slack's file object
