"""Issue 13.4: the App Home tab lists, per channel the user shares with the bot, its documents
(title, pages, who added it, when) with paging; "Forget" (with Slack's confirmation) only on the
user's own documents, checked again on the server; "Add an arXiv paper" through a modal. Both modes."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bot import messages
from citebot.domain import Scope
from dataflows.app import Citebot
from tests.bot.harness import USER, Driver, new_channel, one_page_pdf, share_file, thread_texts
from tests.standins.slack_server import SlackStandIn


def _channel_with_pdf(driver: Driver, text: str, *, users: set[str]) -> tuple[str, str]:
    slack = driver.slack
    channel = new_channel(slack)
    slack.state.channels[channel].users = set(users)
    message, payload = share_file(slack, channel, one_page_pdf(text), f"{uuid.uuid4().hex[:6]}.pdf")
    driver.deliver(payload)
    slack.wait_for(lambda: [t for t in thread_texts(slack, channel, message["ts"]) if "pages" in t], timeout=120)
    return channel, slack.state.channels[channel].name


def _home(driver: Driver, user: str, after: int) -> dict[str, Any]:
    views = driver.slack.wait_for(lambda: driver.slack.home_views.get(user, [])[after:])
    return views[-1]


def _published(slack: SlackStandIn, user: str) -> int:
    return len(slack.home_views.get(user, []))


def test_home_lists_shared_channels_documents_and_forgets_only_the_users_own(
    driver: Driver, slack: SlackStandIn, citebot: Citebot
) -> None:
    mine, mine_name = _channel_with_pdf(driver, f"Wombat caches {uuid.uuid4().hex} evict after 90 s.", users={USER})
    theirs, theirs_name = _channel_with_pdf(
        driver, f"Private plans {uuid.uuid4().hex} of the other team.", users={"U0OTHER"}
    )
    before = _published(slack, USER)
    driver.deliver(slack.app_home_opened_event(USER))
    view = _home(driver, USER, before)
    shown = json.dumps(view, ensure_ascii=False)
    assert view["type"] == "home" and f"#{mine_name}" in shown and theirs_name not in shown
    assert "Wombat caches" in shown and "1 pages · added by <@U0USER1>" in shown
    forget = next(
        b["accessory"] for b in view["blocks"] if (b.get("accessory") or {}).get("action_id") == messages.HOME_FORGET
    )
    assert forget["confirm"]["confirm"]["text"] == "Forget"  # Slack asks before the click is sent
    # A forged click on a document in a channel the user does not share changes nothing.
    other_doc = citebot.documents(Scope(slack.state.team_id, theirs))[0]
    forged = dict(forget, value=json.dumps({"c": theirs, "d": other_doc.document_id}))
    before = _published(slack, USER)
    driver.click(slack.home_action(user=USER, action=forged))
    assert "no longer in a channel you share" in json.dumps(_home(driver, USER, before))
    assert citebot.documents(Scope(slack.state.team_id, theirs))
    # The real click removes the user's document and the Home tab says so.
    before = _published(slack, USER)
    driver.click(slack.home_action(user=USER, action=forget))
    after = json.dumps(_home(driver, USER, before), ensure_ascii=False)
    assert ":wastebasket: Removed *Wombat caches" in after and f"*#{mine_name}* — 0 documents" in after
    assert citebot.documents(Scope(slack.state.team_id, mine)) == []


def test_home_adds_an_arxiv_paper_through_a_modal(driver: Driver, slack: SlackStandIn, citebot: Citebot) -> None:
    channel = new_channel(slack)
    slack.state.channels[channel].users = {USER}
    before = _published(slack, USER)
    driver.deliver(slack.app_home_opened_event(USER))
    view = _home(driver, USER, before)
    add = next(
        b["accessory"]
        for b in view["blocks"]
        if b.get("block_id") == f"home-{channel}" and b["accessory"]["action_id"] == messages.HOME_ADD
    )
    opened = len(slack.modals)
    driver.click(slack.home_action(user=USER, action=add))
    modal = slack.wait_for(lambda: slack.modals[opened:])[-1]
    assert modal["private_metadata"] == channel
    before = _published(slack, USER)
    driver.click(
        slack.view_submission(
            user=USER, view=modal, values={messages.HOME_ARXIV_BLOCK: {messages.HOME_ARXIV_INPUT: "1111.2011"}}
        )
    )
    shown = json.dumps(_home(driver, USER, before), ensure_ascii=False)
    assert "Quantum Criticality" in shown and "1 document" in shown
    docs = citebot.documents(Scope(slack.state.team_id, channel))
    assert [d.arxiv_id for d in docs] == ["1111.2011"] and docs[0].added_by == USER


def test_home_pages_through_many_documents(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    slack.state.channels[channel].users = {USER}
    for i in range(messages.HOME_DOCS_PER_PAGE + 1):
        message, payload = share_file(slack, channel, one_page_pdf(f"Note {i} {uuid.uuid4().hex}"), f"note{i}.pdf")
        http.deliver(payload)
        slack.wait_for(lambda m=message: [t for t in thread_texts(slack, channel, m["ts"]) if "pages" in t], timeout=120)
    before = _published(slack, USER)
    http.deliver(slack.app_home_opened_event(USER))
    view = _home(http, USER, before)
    assert "(page 1 of 2)" in json.dumps(view)
    nxt = next(
        e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"] if json.loads(e["value"])["c"] == channel
    )
    before = _published(slack, USER)
    http.click(slack.home_action(user=USER, action=nxt))
    assert "(page 2 of 2)" in json.dumps(_home(http, USER, before))
