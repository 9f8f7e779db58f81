"""/forget in Slack (issue 17, item 6): a meaningful match only, a confirmation button that shows
the title, and only the person who added the document here or a workspace admin may remove it.

Before: `/forget e` removed the only document whose id starts with "e" and `/forget *` one whose
title contains "*", at once and for anyone in the channel."""

from __future__ import annotations

from typing import Any

from bot import messages
from citebot.domain import Document, Scope
from tests.bot.harness import USER, Driver, new_channel, share_file
from tests.paths import PDFS
from tests.standins.slack_server import SlackStandIn

PAPER = PDFS / "1111.2011.pdf"
TITLE = "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"


def listed(driver: Driver, slack: SlackStandIn, channel: str) -> list[Document]:
    return driver.bot.server.citebot.documents(Scope(slack.state.team_id, channel))


def shared_paper(driver: Driver, slack: SlackStandIn) -> tuple[str, Document]:
    channel = new_channel(slack)
    message, payload = share_file(slack, channel, PAPER.read_bytes(), "bethe.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: "white_check_mark" in slack.reactions_on(channel, message["ts"]), timeout=180)
    [doc] = listed(driver, slack, channel)
    return channel, doc


def forget(driver: Driver, slack: SlackStandIn, text: str, channel: str, user: str = USER) -> dict[str, Any]:
    command = driver.command("/forget", text, channel, user=user)
    return slack.wait_for(lambda: driver.responses_for(command["response_url"]))[0]


def click(driver: Driver, slack: SlackStandIn, prompt: dict[str, Any], action_id: str, count: int) -> list[dict[str, Any]]:
    payload = slack.click_ephemeral(prompt, action_id)
    driver.click(payload)
    return slack.wait_for(lambda: (r := driver.responses_for(payload["response_url"])) and len(r) >= count and r)


def test_forget_needs_a_meaningful_match_and_a_click(driver: Driver, slack: SlackStandIn) -> None:
    channel, doc = shared_paper(driver, slack)
    for vague in (doc.document_id[0], doc.document_id[:5], "*", "Quant", "a on"):
        reply = forget(driver, slack, vague, channel)
        assert reply["response_type"] == "ephemeral" and reply["text"].startswith(":x: No document here matches"), reply
        assert "at least 6 characters of its id" in reply["text"]
    assert listed(driver, slack, channel) == [doc]

    for meaningful in (doc.document_id[:6], "bethe lattice", TITLE.upper()):
        prompt = forget(driver, slack, meaningful, channel)
        assert prompt["response_type"] == "ephemeral"
        assert prompt["text"] == f"Remove *{TITLE}* from this channel?"
        assert listed(driver, slack, channel) == [doc]  # nothing removed before the click

    [cancelled] = click(driver, slack, prompt, messages.FORGET_CANCEL, 1)
    assert cancelled["text"] == "Nothing was removed." and cancelled["replace_original"] is True
    assert listed(driver, slack, channel) == [doc]

    prompt = forget(driver, slack, "bethe lattice", channel)
    removed = click(driver, slack, prompt, messages.FORGET_CONFIRM, 2)
    assert removed[0]["delete_original"] is True  # the prompt goes away
    assert removed[1]["response_type"] == "in_channel" and removed[1]["text"].startswith(f":wastebasket: Removed *{TITLE}*")
    assert listed(driver, slack, channel) == []


def test_only_the_adder_or_an_admin_may_forget(http: Driver, slack: SlackStandIn) -> None:
    channel, doc = shared_paper(http, slack)
    refused = forget(http, slack, "bethe lattice", channel, user="U0OTHER9")
    assert refused["text"] == (
        f":x: Only <@{USER}>, who added *{TITLE}* here, or a workspace admin can remove it from this channel."
    )
    assert listed(http, slack, channel) == [doc]
    assert [c.args["user"] for c in slack.calls("users.info")][-1] == "U0OTHER9"

    slack.add_user("U0ADMIN9", is_admin=True)
    prompt = forget(http, slack, "bethe lattice", channel, user="U0ADMIN9")
    assert prompt["text"] == f"Remove *{TITLE}* from this channel?"
    removed = click(http, slack, prompt, messages.FORGET_CONFIRM, 2)
    assert removed[1]["text"].startswith(f":wastebasket: Removed *{TITLE}*")
    assert listed(http, slack, channel) == []
