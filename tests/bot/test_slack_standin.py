"""The stand-in Slack itself answers like real Slack (so the bot tests mean something)."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.standins.slack_server import LOGIN_PAGE, SlackStandIn


@pytest.fixture(scope="module")
def standin() -> SlackStandIn:
    with SlackStandIn() as server:
        server.add_channel("C1")
        server.add_channel("C2", member=False)
        yield server


def test_web_api_shapes_and_errors(standin: SlackStandIn) -> None:
    # a channel of its own: C1's ~1/s posting budget is what other tests here use up
    standin.add_channel("CSHAPES")

    async def scenario() -> None:
        client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
        auth = await client.auth_test()
        assert auth["user_id"] == standin.state.bot_user_id and auth["bot_id"] == standin.state.bot_id
        posted = await client.chat_postMessage(channel="CSHAPES", text="hi")
        assert posted["channel"] == "CSHAPES" and posted["message"]["text"] == "hi"
        for call, error in (
            (client.chat_postMessage(channel="C2", text="x"), "not_in_channel"),
            (client.chat_postMessage(channel="C404", text="x"), "channel_not_found"),
            (client.chat_postMessage(channel="CSHAPES", blocks=[{"type": "section"}] * 51), "invalid_blocks"),
            (AsyncWebClient(token="xoxb-bad", base_url=standin.api_url).auth_test(), "invalid_auth"),
            (client.files_info(file="F404"), "file_not_found"),
        ):
            with pytest.raises(SlackApiError) as raised:
                await call
            assert raised.value.response["error"] == error

    asyncio.run(scenario())


def test_downloads_need_the_bot_token(standin: SlackStandIn) -> None:
    file = standin.add_file(b"%PDF-1.4 test", "a.pdf")
    url = file["url_private_download"]
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {standin.bot_token}"})) as r:
        assert r.read() == b"%PDF-1.4 test"
    for headers in ({}, {"Authorization": "Bearer xoxb-other"}):
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            assert r.status == 200 and r.headers.get_content_type() == "text/html" and r.read().decode() == LOGIN_PAGE


def test_socket_mode_hello_envelopes_and_acks(standin: SlackStandIn) -> None:
    async def scenario() -> None:
        client = AsyncWebClient(token=standin.app_token, base_url=standin.api_url)
        url = (await client.apps_connections_open(app_token=standin.app_token))["url"]
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "hello"
            envelope_id = await asyncio.to_thread(
                standin.send_envelope, "events_api", {"type": "event_callback"}, retry_attempt=2
            )
            envelope = await ws.receive_json()
            assert envelope["envelope_id"] == envelope_id and envelope["retry_attempt"] == 2
            await ws.send_str(json.dumps({"envelope_id": envelope_id}))
            await asyncio.to_thread(standin.wait_ack, envelope_id)

    asyncio.run(scenario())


def test_rate_limit_fault_is_a_real_429(standin: SlackStandIn) -> None:
    from tests.standins.background import Fault

    standin.faults.append(Fault(status=429, retry_after=2, path="chat.postMessage"))
    request = urllib.request.Request(
        standin.api_url + "chat.postMessage",
        data=b"channel=C1&text=x",
        headers={"Authorization": f"Bearer {standin.bot_token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    assert raised.value.code == 429 and raised.value.headers["Retry-After"] == "2"
    assert json.loads(raised.value.read()) == {"ok": False, "error": "ratelimited"}


def _api(standin: SlackStandIn, method: str, **args: object) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        standin.api_url + method,
        data=json.dumps(args).encode(),
        headers={"Authorization": f"Bearer {standin.bot_token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_tiers_answer_429_with_retry_after(standin: SlackStandIn) -> None:
    standin.limit("reactions.remove", per_minute=20, burst=2)
    try:
        statuses = [_api(standin, "reactions.remove", channel="C1", timestamp="1.0", name="x") for _ in range(3)]
    finally:
        standin.reset_limits()
    assert [s[0] for s in statuses] == [200, 200, 429]
    assert statuses[2][1] == {"ok": False, "error": "ratelimited"} and statuses[2][2]["Retry-After"] == "3"
    posts = [_api(standin, "chat.postMessage", channel="C1", text=f"burst {i}")[0] for i in range(12)]
    assert posts.count(429) >= 1  # ~1 a second per channel after a short burst


def test_blocks_are_validated_with_slack_sdk_and_in_total(standin: SlackStandIn) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}
    standin.add_channel("C3")
    bogus = [{"type": "bogus"}]
    assert _api(standin, "chat.postMessage", channel="C3", text="x", blocks=bogus)[1]["error"] == "invalid_blocks"
    assert (
        _api(standin, "chat.postMessage", channel="C3", text="x", blocks=[section] * 5)[1]["error"] == "msg_blocks_too_long"
    )
    missing_text = {"type": "section", "block_id": "b"}
    assert _api(standin, "chat.postMessage", channel="C3", text="x", blocks=[missing_text])[1]["error"] == "invalid_blocks"


def test_bot_messages_have_slacks_shape_and_threads_page(standin: SlackStandIn) -> None:
    standin.add_channel("C4")
    root = standin.user_message("C4", "U1", "root")
    for i in range(5):
        standin.user_message("C4", "U1", f"reply {i}", thread_ts=root["ts"])
    _, posted, _ = _api(standin, "chat.postMessage", channel="C4", text="bot", thread_ts=root["ts"])
    assert "subtype" not in posted["message"] and posted["message"]["bot_id"] and posted["message"]["user"]
    seen, cursor = [], ""
    while True:
        _, page, _ = _api(standin, "conversations.replies", channel="C4", ts=root["ts"], limit=3, cursor=cursor)
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == ["root"] + [f"reply {i}" for i in range(5)] + ["bot"]


def test_scopes_come_from_the_manifest_and_deleted_files_are_gone(standin: SlackStandIn) -> None:
    standin.add_channel("G5", member=False)
    assert _api(standin, "conversations.info", channel="G5")[1]["error"] == "channel_not_found"
    assert _api(standin, "conversations.info", channel="C2")[1]["channel"]["is_member"] is False
    file = standin.add_file(b"%PDF-1.4", "a.pdf")
    assert _api(standin, "files.info", file=file["id"])[1]["ok"]
    standin.delete_file(file["id"])
    assert _api(standin, "files.info", file=file["id"])[1]["error"] == "file_not_found"
    narrow = SlackStandIn(scopes=frozenset({"chat:write"}))
    narrow.add_channel("C6")
    narrow.start()
    try:
        status, body, _ = _api(narrow, "conversations.replies", channel="C6", ts="1.0")
    finally:
        narrow.stop()
    assert body == {"ok": False, "error": "missing_scope", "needed": "channels:history", "provided": "chat:write"}


def test_streams_are_refused_as_slack_refuses_them(standin: SlackStandIn) -> None:
    """Issue 13: chat.*Stream's documented errors, and chunk validation."""
    standin.add_channel("C9")
    root = _api(standin, "chat.postMessage", channel="C9", text="question")[1]["ts"]
    assert _api(standin, "chat.startStream", channel="C9", thread_ts=root)[1]["error"] == "missing_recipient_team_id"
    assert (
        _api(standin, "chat.startStream", channel="C9", thread_ts=root, recipient_team_id="T111")[1]["error"]
        == "missing_recipient_user_id"
    )
    start = dict(channel="C9", thread_ts=root, recipient_team_id="T111", recipient_user_id="U1")
    bad_task = [{"type": "task_update", "id": "t", "title": "x", "status": "done"}]
    assert _api(standin, "chat.startStream", **start, chunks=json.dumps(bad_task))[1]["error"] == "invalid_chunks"
    ts = _api(standin, "chat.startStream", **start, markdown_text="Hel")[1]["ts"]
    assert _api(standin, "chat.appendStream", channel="C9", ts=ts, markdown_text="lo")[1]["ok"]
    assert _api(standin, "chat.stopStream", channel="C9", ts=ts, blocks=json.dumps([{"type": "section"}]))[1]["error"] == (
        "invalid_blocks"
    )
    assert _api(standin, "chat.stopStream", channel="C9", ts=ts)[1]["ok"]
    assert _api(standin, "chat.appendStream", channel="C9", ts=ts, markdown_text="!")[1]["error"] == (
        "message_not_in_streaming_state"
    )
    assert [m["text"] for m in standin.thread("C9", root)] == ["Hello"]


def test_new_methods_and_events_need_the_manifests_scopes_and_subscriptions(standin: SlackStandIn) -> None:
    narrow = SlackStandIn(scopes=frozenset({"chat:write"}))
    narrow.add_channel("D7")
    narrow.start()
    try:
        status, body, _ = _api(narrow, "assistant.threads.setStatus", channel_id="D7", thread_ts="1.0", status="…")
        unfurl = _api(narrow, "chat.unfurl", channel="D7", ts="1.0", unfurls="{}")[1]
        with pytest.raises(ValueError, match="links:read"):
            narrow.link_shared_event("D7", {"ts": "1.0", "user": "U1"}, ["https://arxiv.org/abs/1706.03762"])
    finally:
        narrow.stop()
    assert body["error"] == "missing_scope" and body["needed"] == "assistant:write"
    assert unfurl["error"] == "missing_scope" and unfurl["needed"] == "links:write"
    with pytest.raises(ValueError, match="does not subscribe"):
        standin._subscribed("reaction_added")
    standin.add_channel("D8")
    assert _api(standin, "assistant.threads.setTitle", channel_id="D8", thread_ts="9.9", title="t")[1]["error"] == (
        "invalid_thread_ts"
    )
