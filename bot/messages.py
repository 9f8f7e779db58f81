"""Slack message rendering: Block Kit for answers, ingests and listings; markdown → mrkdwn.

Everything that did not come from the bot itself (document titles and excerpts, model answers,
user questions) goes through ``neutralise`` so it can never ping ``@channel``/``@here``/a user or
smuggle a link; and every message respects Slack's limits (section text ≤ 3000 characters,
≤ 50 blocks) with a visible note when something had to be cut.
"""

from __future__ import annotations

import json
import re
from typing import Any

from citebot.domain import Answer, ArxivOutcome, Citation, Document, IngestResult

Block = dict[str, Any]

MAX_SECTION = 3000
MAX_BLOCKS = 50
MAX_FALLBACK = 3000
EXCERPT_CHARS = 280
DOCS_PER_PAGE = 20
ANSWER_BLOCK = "citebot-answer"  # block_id prefix marking a message as a citebot answer
QUESTION_BLOCK = "citebot-question"
FEEDBACK_UP, FEEDBACK_DOWN, DOCS_PAGE = "citebot_feedback_up", "citebot_feedback_down", "citebot_docs_page"
THINKING = "Thinking…"

ASK_USAGE = (
    "*Usage:* `/ask [--top-k N] [--alpha X] [--summary] your question`\n"
    "• `--top-k N`: how many passages to read (default from settings)\n"
    "• `--alpha X`: 0 = keyword search only, 1 = meaning only (default 0.5)\n"
    "• `--summary`: summarise instead of answering one question\n"
    "Example: `/ask What optimizer was used to train the Transformer?`"
)
ARXIV_USAGE = "*Usage:* `/arxiv ID [ID…]`, e.g. `/arxiv 1706.03762 1810.04805`"
FORGET_USAGE = "*Usage:* `/forget DOC`, where DOC is a document id or title from `/docs`"
GENERIC_ERROR = ":warning: Something went wrong on my side. Please try again in a minute."


# --- safety -------------------------------------------------------------------------------
# <@U1>, <#C1|name>, <!here>, <!subteam^S1|@team>, <https://x|label>, <mailto:…>: Slack's markup.
_SLACK_TOKEN = re.compile(r"<((?:[@#!]|[a-z][a-z0-9+.-]*:)[^<>\s|]*(?:\|[^<>\n]*)?)>", re.IGNORECASE)
_LOOSE_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_BARE_AMP = re.compile(r"&(?!amp;|lt;|gt;)")


def _plain_token(inner: str) -> str:
    """What a Slack ``<…>`` token looks like written out, harmlessly."""
    target, _, label = inner.partition("|")
    if target.startswith(("@U", "@W", "@B")):
        return "@" + (label or target[1:])
    if target.startswith("#C") or target.startswith("#G"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        name = label or target[1:].split("^")[0]
        return "@" + name.lstrip("@")
    return label or target  # a link: keep the visible text only


def neutralise(text: str) -> str:
    """Make untrusted text inert in mrkdwn: no mentions, no broadcasts, no hidden links."""
    text = _SLACK_TOKEN.sub(lambda m: _plain_token(m.group(1)), text)
    text = _BARE_AMP.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    return _LOOSE_BROADCAST.sub(lambda m: "@\u200b" + m.group(1), text)


def slack_link(url: str, label: str) -> str:
    """A safe ``<url|label>``: http(s) only, label without the characters that end a link."""
    if not re.match(r"^https?://", url or ""):
        return label
    url = url.replace(" ", "%20").replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    label = label.replace("|", "/").replace(">", "›").replace("<", "‹")
    return f"<{url}|{label}>"


# --- markdown → mrkdwn --------------------------------------------------------------------
_CODE_FENCE = re.compile(r"(```.*?```|`[^`\n]+`)", re.DOTALL)
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)
_STRIKE = re.compile(r"~~(.+?)~~")
_BOLD_MARK = "\x01"


def _convert_prose(text: str) -> str:
    links: list[str] = []

    def keep_link(m: re.Match[str]) -> str:
        links.append(slack_link(m.group(2).replace("&amp;", "&").replace("&", "&amp;"), m.group(1)))
        return f"\x02{len(links) - 1}\x02"

    text = _MD_LINK.sub(keep_link, text)
    text = _HEADING.sub(lambda m: f"{_BOLD_MARK}{m.group(1)}{_BOLD_MARK}", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(2)}{_BOLD_MARK}", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace(_BOLD_MARK, "*")
    return re.sub(r"\x02(\d+)\x02", lambda m: links[int(m.group(1))], text)


def to_mrkdwn(markdown: str) -> str:
    """Model markdown → Slack mrkdwn (bold, italics, links, headings, bullets), neutralised.

    Code spans and fences are kept verbatim (but still neutralised).
    """
    parts = _CODE_FENCE.split(neutralise(markdown))
    return "".join(p if i % 2 else _convert_prose(p) for i, p in enumerate(parts))


# --- limits -------------------------------------------------------------------------------
def split_text(text: str, limit: int = MAX_SECTION) -> list[str]:
    """Split at paragraph, line or word boundaries into pieces of at most ``limit`` chars."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def truncate(text: str, limit: int, note: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(note)].rstrip() + note


def section(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}}
    if block_id:
        block["block_id"] = block_id
    return block


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}]}


def fit_blocks(blocks: list[Block], tail: list[Block], what: str = "items", limit: int = MAX_BLOCKS) -> list[Block]:
    """``blocks`` + ``tail`` within ``limit`` blocks; when cut, a visible note says how many were left out."""
    room = limit - len(tail)
    if len(blocks) <= room:
        return blocks + tail
    kept = blocks[: room - 1]
    left_out = len(blocks) - len(kept)
    return kept + [context(f"_… {left_out} more {what} not shown (Slack allows {MAX_BLOCKS} blocks per message)._")] + tail


# --- answers ------------------------------------------------------------------------------
def _citation_block(c: Citation) -> Block:
    title = neutralise(c.title or "Untitled")
    head = f"*[{c.n}]* {slack_link(c.link, title) if c.link else title} — {c.pages}"
    excerpt = neutralise(" ".join(c.excerpt.split()))
    body = f"{head}\n>{truncate(excerpt, EXCERPT_CHARS)}" if excerpt else head
    return section(body)


def feedback_block(answer_key: str, question: str) -> Block:
    value = json.dumps({"k": answer_key, "q": truncate(question, 1200)}, ensure_ascii=False)
    return {
        "type": "actions",
        "block_id": "citebot-feedback",
        "elements": [
            {
                "type": "button",
                "action_id": FEEDBACK_UP,
                "text": {"type": "plain_text", "text": "👍 Helpful"},
                "value": value,
            },
            {
                "type": "button",
                "action_id": FEEDBACK_DOWN,
                "text": {"type": "plain_text", "text": "👎 Not helpful"},
                "value": value,
            },
        ],
    }


def answer_blocks(answer: Answer, answer_key: str) -> list[Block]:
    """The final answer message: answer text, then Sources, then 👍/👎 (≤ 50 blocks)."""
    text_blocks = [section(piece, f"{ANSWER_BLOCK}-{i}") for i, piece in enumerate(split_text(to_mrkdwn(answer.text)))]
    if not text_blocks:
        text_blocks = [section("_(empty answer)_", f"{ANSWER_BLOCK}-0")]
    tail = [feedback_block(answer_key, answer.question)]
    if not answer.grounded or not answer.citations:
        return fit_blocks(text_blocks, tail, "parts of the answer")
    # The answer may take most of the message, but a few sources always fit.
    head = fit_blocks(text_blocks, [], "parts of the answer", limit=MAX_BLOCKS - 8)
    head += [{"type": "divider"}, section("*Sources*")]
    sources = [_citation_block(c) for c in answer.citations]
    return head + fit_blocks(sources, tail, "sources", limit=MAX_BLOCKS - len(head))


def answer_fallback(answer: Answer) -> str:
    """Plain-text ``text`` for notifications and clients without blocks."""
    text = to_mrkdwn(answer.text)
    if answer.grounded and answer.citations:
        text += "\n\nSources: " + "; ".join(f"[{c.n}] {neutralise(c.title)} {c.pages}" for c in answer.citations)
    return truncate(text, MAX_FALLBACK)


def partial_text(text: str) -> str:
    """A streaming update: what the model wrote so far (kept within one section)."""
    return truncate(to_mrkdwn(text), MAX_SECTION - 2) + " ▍"


def question_message(user: str, question: str) -> tuple[str, list[Block]]:
    text = f"<@{user}> asked: {neutralise(question)}"
    return truncate(text, MAX_FALLBACK), [section(text, QUESTION_BLOCK)]


def is_answer_message(message: dict[str, Any]) -> bool:
    return any(str(b.get("block_id", "")).startswith(ANSWER_BLOCK) for b in message.get("blocks") or [])


def is_question_message(message: dict[str, Any]) -> bool:
    return any(b.get("block_id") == QUESTION_BLOCK for b in message.get("blocks") or [])


# --- ingestion ----------------------------------------------------------------------------
def ingest_text(result: IngestResult, filename: str = "") -> str:
    doc = result.document
    title = neutralise(doc.title or filename or "Untitled")
    if doc.link:
        title = slack_link(doc.link, title)
    if result.already_present:
        head = f":white_check_mark: *{title}* is already indexed here ({doc.pages} pages, {doc.chunks} chunks)."
    else:
        head = f":white_check_mark: Indexed *{title}*: {doc.pages} pages, {doc.chunks} chunks in {result.seconds:.1f} s."
    authors = ", ".join(neutralise(a) for a in doc.authors[:6]) + (" et al." if len(doc.authors) > 6 else "")
    lines = [head]
    if authors:
        lines.append(f"_{authors}_")
    lines.append("Ask about it with `/ask your question`, or mention me with a question.")
    return truncate("\n".join(lines), MAX_SECTION)


def arxiv_outcome_text(outcome: ArxivOutcome) -> str:
    if outcome.result is None:
        return f":x: `{neutralise(outcome.requested_id)}`: {neutralise(outcome.error or 'could not be added.')}"
    return ingest_text(outcome.result)


def error_text(message: str) -> str:
    return truncate(f":x: {message}", MAX_SECTION)


# --- documents ----------------------------------------------------------------------------
def docs_blocks(docs: list[Document], page: int) -> tuple[str, list[Block]]:
    """Page ``page`` (0-based) of the channel's documents, with a "Next page" button when more."""
    if not docs:
        text = "No documents in this channel yet. Share a PDF here or use `/arxiv ID`."
        return text, [section(text)]
    pages = (len(docs) + DOCS_PER_PAGE - 1) // DOCS_PER_PAGE
    page = max(0, min(page, pages - 1))
    shown = docs[page * DOCS_PER_PAGE : (page + 1) * DOCS_PER_PAGE]
    header = f"*Documents in this channel* ({len(docs)}) — page {page + 1} of {pages}"
    blocks: list[Block] = [section(header)]
    for d in shown:
        title = neutralise(d.title or d.document_id)
        if d.link:
            title = slack_link(d.link, title)
        who = f"<@{d.added_by}>" if re.fullmatch(r"[UW][A-Z0-9]+", d.added_by or "") else neutralise(d.added_by or "?")
        blocks.append(
            section(
                f"*{title}*\n{d.source} · {d.pages} pages · added by {who} · {neutralise(d.added_at[:16].replace('T', ' '))}"
                f" · id `{neutralise(d.document_id)}`"
            )
        )
    buttons = []
    if page > 0:
        buttons.append(
            {
                "type": "button",
                "action_id": DOCS_PAGE + "_prev",
                "text": {"type": "plain_text", "text": "Previous page"},
                "value": str(page - 1),
            }
        )
    if page + 1 < pages:
        buttons.append(
            {
                "type": "button",
                "action_id": DOCS_PAGE,
                "text": {"type": "plain_text", "text": "Next page"},
                "value": str(page + 1),
            }
        )
    if buttons:
        blocks.append({"type": "actions", "block_id": "citebot-docs-pages", "elements": buttons})
    return f"{len(docs)} documents in this channel (page {page + 1} of {pages})", blocks


def forgot_text(doc: Document) -> str:
    return f":wastebasket: Removed *{neutralise(doc.title or doc.document_id)}* from this channel ({doc.chunks} chunks)."


def not_in_channel_text() -> str:
    return "I'm not a member of this channel, so I can't post here. Invite me with `/invite @citebot` and try again."
