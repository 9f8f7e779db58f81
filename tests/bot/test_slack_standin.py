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
    async def scenario() -> None:
        client = AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)
        auth = await client.auth_test()
        assert auth["user_id"] == standin.state.bot_user_id and auth["bot_id"] == standin.state.bot_id
        posted = await client.chat_postMessage(channel="C1", text="hi")
        assert posted["channel"] == "C1" and posted["message"]["text"] == "hi"
        for call, error in (
            (client.chat_postMessage(channel="C2", text="x"), "not_in_channel"),
            (client.chat_postMessage(channel="C404", text="x"), "channel_not_found"),
            (client.chat_postMessage(channel="C1", blocks=[{"type": "section"}] * 51), "invalid_blocks"),
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
