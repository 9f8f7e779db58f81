"""Issue 13.5: ``/arxiv search WORDS`` lists arXiv's top five with "Add to this channel"; arxiv.org
links posted in a channel are previewed (link_shared → chat.unfurl) with the same button. Both modes."""

from __future__ import annotations

import json
import uuid

from bot import messages
from citebot.domain import Scope
from dataflows.app import Citebot
from tests.bot.harness import USER, Driver, new_channel, wait_quiet
from tests.standins.arxiv_server import ArxivStandin
from tests.standins.slack_server import SlackStandIn


def test_search_by_words_then_add_a_result_to_the_channel(
    driver: Driver, slack: SlackStandIn, citebot: Citebot, arxiv_standin: ArxivStandin
) -> None:
    channel = new_channel(slack)
    payload = driver.command("/arxiv", "search attention transformer", channel)
    response = slack.wait_for(lambda: driver.responses_for(payload["response_url"]))[0]
    assert response["response_type"] == "ephemeral"
    shown = json.dumps(response["blocks"], ensure_ascii=False)
    assert "*Attention Is All You Need* (2017) · `1706.03762`" in shown and "Ashish Vaswani" in shown
    assert "The dominant sequence transduction models" in shown
    query = [r.query for r in arxiv_standin.requests if r.query.get("search_query")][-1]
    assert query["search_query"] == "all:attention AND all:transformer" and query["max_results"] == "5"
    results = [b for b in response["blocks"] if b.get("accessory")]
    assert 1 <= len(results) <= 5
    button = results[0]["accessory"]
    assert button["text"]["text"] == "Add to this channel" and button["value"] == "1706.03762"
    driver.click(slack.block_action(channel=channel, message_ts=slack.next_ts(), user=USER, action=button))
    added = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if "added a paper" in m["text"]], timeout=120)
    assert (
        added[0]["text"].startswith(f"<@{USER}> added a paper from arXiv.")
        and "Attention Is All You Need" in added[0]["text"]
    )
    # (the same PDF may already be indexed from a file share elsewhere: then it is the same document)
    assert [d.title for d in citebot.documents(Scope(slack.state.team_id, channel))] == ["Attention Is All You Need"]


def test_a_search_without_matches_says_so(http: Driver, slack: SlackStandIn) -> None:
    channel = new_channel(slack)
    payload = http.command("/arxiv", f"search zzqx{uuid.uuid4().hex[:6]}", channel)
    response = slack.wait_for(lambda: http.responses_for(payload["response_url"]))[0]
    assert response["text"].startswith("No arXiv paper matches")


def test_an_arxiv_link_in_a_channel_is_previewed_with_an_add_button(driver: Driver, slack: SlackStandIn) -> None:
    channel, outside = new_channel(slack), new_channel(slack, member=False)
    for where in (channel, outside):
        message = slack.user_message(where, USER, "Read <https://arxiv.org/abs/1706.03762> and <https://example.com/x>")
        driver.deliver(
            slack.link_shared_event(where, message, ["https://arxiv.org/abs/1706.03762", "https://example.com/x"])
        )
    unfurled = slack.wait_for(lambda: [m for m in slack.channel_messages(channel) if m.get("unfurls")])[0]
    preview = unfurled["unfurls"]["https://arxiv.org/abs/1706.03762"]["blocks"]
    assert "*Attention Is All You Need* (2017)" in json.dumps(preview, ensure_ascii=False)
    assert preview[-1]["elements"][0]["action_id"] == messages.ARXIV_ADD
    wait_quiet(slack, 1.0)
    assert not [m for m in slack.channel_messages(outside) if m.get("unfurls")]  # not where the bot is not a member
    assert not [c for c in slack.calls("chat.unfurl") if not c.response["ok"]]
