"""arXiv by words and arXiv link previews → ``Citebot.find_arxiv``; "Add to this channel" →
``Citebot.ingest_arxiv``.

* ``/arxiv search WORDS``: the top five matches (title, authors, year, the abstract's first line),
  shown only to the person who asked, each with "Add to this channel". (Registered before
  ``listeners/arxiv.py``, which takes every other ``/arxiv``.)
* ``link_shared`` for arxiv.org abs/pdf links: ``chat.unfurl`` previews each paper with the same
  button. Unfurls only in conversations the bot is a member of.
* "Add to this channel": adds the paper to the conversation the button is in and says so there.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.deps import Deps, log
from bot.guard import never_silent, on_command
from bot.incoming import Click, Command, scope_of
from bot.queueing import ingest_turn
from citebot.arxiv_ids import normalise_arxiv_id
from citebot.domain import Provenance
from citebot.errors import CitebotError

MAX_UNFURLS = 5  # links previewed per message


async def _is_search(command: dict[str, Any]) -> bool:
    words = str(command.get("text") or "").split(maxsplit=1)
    return bool(words) and words[0].lower() == "search"


async def _bot_is_in(client: AsyncWebClient, channel: str) -> bool:
    try:
        info = (await client.conversations_info(channel=channel)).get("channel") or {}
    except SlackApiError:
        return False
    return bool(info.get("is_member") or info.get("is_im"))


def register(app: AsyncApp, deps: Deps) -> None:
    @on_command(app, deps, "/arxiv", matchers=[_is_search])
    async def on_search(command: Command) -> None:
        words = command.text.split(maxsplit=1)[1] if len(command.text.split(maxsplit=1)) > 1 else ""
        matches = await deps.capacity.questions.run(deps.citebot.find_arxiv, words=words)
        text, blocks = messages.arxiv_search_blocks(words, matches)
        await command.tell(text, blocks)

    @app.event("link_shared")
    async def on_link(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        channel, ts = str(event.get("channel") or ""), str(event.get("message_ts") or "")
        async with never_silent(deps, None, f"link_shared {channel}/{ts}"):
            ids: dict[str, str] = {}
            for link in event.get("links") or []:
                try:
                    ids.setdefault(normalise_arxiv_id(str(link.get("url") or "")), str(link.get("url")))
                except CitebotError:
                    continue
            if not ids:
                return
            if not await _bot_is_in(client, channel):
                return
            found = await deps.capacity.questions.run(deps.citebot.find_arxiv, ids=list(ids)[:MAX_UNFURLS])
            by_id = {m.arxiv_id: m for m in found}
            unfurls = {url: {"blocks": messages.unfurl_blocks(by_id[i])} for i, url in ids.items() if i in by_id}
            if unfurls:
                await client.chat_unfurl(channel=channel, ts=ts, unfurls=unfurls)

    @app.action(messages.ARXIV_ADD)
    async def on_add(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        await ack()
        click = Click.parse(body, action, context, respond)
        async with never_silent(deps, lambda text: click.tell(text), "arXiv add"):
            scope = scope_of(context, click.channel)
            provenance = Provenance(scope=scope, user=click.user, source="arxiv")
            if not await _bot_is_in(client, click.channel):  # indexed only where the bot can answer
                await click.tell(messages.cannot_post_text(in_dm=click.channel.startswith("D")))
                return
            try:
                async with ingest_turn(
                    deps, client, scope=scope, name=f"arXiv {click.value}", user=click.user, thread_ts=None
                ) as turn:
                    if not turn.started:
                        return
                    outcome = (await deps.capacity.ingest.run(deps.citebot.ingest_arxiv, [click.value], provenance))[0]
                text = messages.arxiv_added_text(click.user, outcome)
                await turn.say(text, [messages.section(text)])
            except SlackApiError as error:  # the bot cannot post there (not a member…): tell the person
                log.info("could not post the arXiv outcome in %s: %s", click.channel, error.response.get("error"))
                await click.tell(messages.cannot_post_text(in_dm=click.channel.startswith("D")))
