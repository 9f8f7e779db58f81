"""Slack message rendering: Block Kit for answers, ingests and listings; markdown → mrkdwn.

Everything that did not come from the bot itself (document titles and excerpts, model answers,
user questions) goes through ``neutralise`` so it can never ping ``@channel``/``@here``/a user or
hide a link's target (a link from such text is shown as ``label (URL)``); and every message
respects Slack's limits (section text ≤ 3000 characters, ≤ 50 blocks, ≤ ``MAX_TOTAL_TEXT`` of block
text in all, button values ≤ 2000) with a visible note, or a follow-up message, when something had
to be cut or moved.
"""

from __future__ import annotations

import json
import re
from typing import Any

from citebot.domain import EXCERPT_CHARS, Answer, ArxivOutcome, Citation, Document, IngestResult

Block = dict[str, Any]

MAX_SECTION = 3000
MAX_BLOCKS = 50
# Slack refuses a message whose blocks carry more than ~12-13k characters of text in all
# (msg_blocks_too_long), well below 50 × 3000; sources beyond this go to a follow-up message.
MAX_TOTAL_TEXT = 11_000
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK = 3000
DOCS_PER_PAGE = 20
ANSWER_BLOCK = "citebot-answer"  # block_id prefix marking a message as a citebot answer
QUESTION_BLOCK = "citebot-question"
FEEDBACK_UP, FEEDBACK_DOWN, DOCS_PAGE = "citebot_feedback_up", "citebot_feedback_down", "citebot_docs_page"
FEEDBACK = "citebot_feedback"  # the feedback_buttons element (👍/👎 in one context_actions block)
FEEDBACK_BLOCK = ANSWER_BLOCK + "-feedback"  # also marks a streamed message as an answer
THINKING = "Thinking…"
FEEDBACK_THANKS = {True: "Thanks for the feedback! :+1:", False: "Thanks, noted. I'll use it to get better."}

# The task timeline shown while an answer streams (task_update chunks).
TASK_SEARCH, TASK_RERANK, TASK_WRITE = "search", "rerank", "write"


def task_search_title(documents: int | None, channel_name: str) -> str:
    where = f" in {channel_name}" if channel_name else ""
    if documents is None:
        return f"Searching the documents{where}"
    return f"Searching {documents} document{'s' if documents != 1 else ''}{where}"


def task_rerank_title(passages: int) -> str:
    return f"Reranked to {passages} passage{'s' if passages != 1 else ''}"


def task_write_title(*, offline: bool) -> str:
    return "Picking the supporting sentences" if offline else "Writing the answer"


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
    return shown_link(target, label)


def shown_link(url: str, label: str) -> str:
    """A link from untrusted text, written out so its target is visible: ``label (url)``."""
    return url if label in ("", url, url.split("://", 1)[-1]) else f"{label} ({url})"


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

    def keep_link(m: re.Match[str]) -> str:  # shown with its target: the label may not hide it
        links.append(shown_link(m.group(2), m.group(1)))
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
    """Model markdown → Slack mrkdwn (bold, italics, headings, bullets; links as ``label (url)``),
    neutralised.

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


def feedback_value(answer_key: str, question: str, helpful: bool | None = None) -> str:
    """The button value: the answer's key, the question (and, for feedback_buttons, which one was
    pressed), within Slack's 2000 characters once JSON-escaped (quotes, backslashes and control
    characters grow)."""
    question = truncate(question, 1200)
    extra = {} if helpful is None else {"h": int(helpful)}
    while True:
        value = json.dumps({"k": answer_key, "q": question} | extra, ensure_ascii=False)
        if len(value) <= MAX_BUTTON_VALUE:
            return value
        question = truncate(question, max(0, len(question) - (len(value) - MAX_BUTTON_VALUE) - 1))


def feedback_block(answer_key: str, question: str) -> Block:
    """Slack's feedback_buttons (👍/👎) in a context_actions block under the answer."""
    return {
        "type": "context_actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "Helpful"},
                    "accessibility_label": "This answer was helpful",
                    "value": feedback_value(answer_key, question, True),
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "Not helpful"},
                    "accessibility_label": "This answer was not helpful",
                    "value": feedback_value(answer_key, question, False),
                },
            }
        ],
    }


def feedback_of(block: Block) -> dict[str, Any]:
    """The stored value (key ``k``, question ``q``) of an answer's feedback block."""
    element = block["elements"][0]
    return json.loads(element["positive_button"]["value"] if "positive_button" in element else element["value"])


def block_text(blocks: list[Block]) -> int:
    """Characters of text in ``blocks``, as Slack counts them against its total."""
    total = 0
    for b in blocks:
        total += len((b.get("text") or {}).get("text", ""))
        total += sum(
            len((e.get("text") or {}).get("text", "")) if isinstance(e.get("text"), dict) else len(e.get("text") or "")
            for e in b.get("elements") or []
        )
    return total


def _fit_text(blocks: list[Block], room: int, what: str) -> list[Block]:
    """The leading ``blocks`` whose text fits in ``room`` characters, with a note when some are cut."""
    kept: list[Block] = []
    for i, b in enumerate(blocks):
        if block_text(kept) + block_text([b]) > room - 120:
            return kept + [context(f"_… {len(blocks) - i} more {what} not shown (too long for one Slack message)._")]
        kept.append(b)
    return kept


def answer_layout(answer: Answer, answer_key: str) -> tuple[list[Block], list[list[Block]]]:
    """The answer message (answer text, Sources, 👍/👎) and the follow-up messages holding the
    sources that did not fit in it, each within Slack's block count and total text limits."""
    text_blocks = [section(piece, f"{ANSWER_BLOCK}-{i}") for i, piece in enumerate(split_text(to_mrkdwn(answer.text)))]
    if not text_blocks:
        text_blocks = [section("_(empty answer)_", f"{ANSWER_BLOCK}-0")]
    tail = [feedback_block(answer_key, answer.question)]
    if not answer.grounded or not answer.citations:
        return _fit_text(
            fit_blocks(text_blocks, [], "parts of the answer", MAX_BLOCKS - 1), MAX_TOTAL_TEXT, "parts"
        ) + tail, []
    # The answer may take most of the message, but a few sources always fit.
    head = fit_blocks(text_blocks, [], "parts of the answer", limit=MAX_BLOCKS - 8)
    head = _fit_text(head, MAX_TOTAL_TEXT - 4 * (EXCERPT_CHARS + 200), "parts of the answer")
    head += [{"type": "divider"}, section("*Sources*")]
    sources = [_citation_block(c) for c in answer.citations]
    pages: list[list[Block]] = []
    room_blocks, room_text = MAX_BLOCKS - len(head) - len(tail) - 1, MAX_TOTAL_TEXT - block_text(head + tail) - 120
    while sources:
        page: list[Block] = []
        while sources and len(page) < room_blocks and block_text(page + sources[:1]) <= room_text:
            page.append(sources.pop(0))
        if not page:  # a single source too long for the room left: give it its own message
            page.append(sources.pop(0))
        pages.append(page)
        room_blocks, room_text = MAX_BLOCKS - 2, MAX_TOTAL_TEXT - 120
    first = head + pages[0]
    if len(pages) > 1:
        moved = sum(len(p) for p in pages[1:])
        first.append(context(f"_{moved} more sources in the next message._"))
    rest = [[section("*More sources*")] + page for page in pages[1:]]
    return first + tail, rest


def stream_tail(answer: Answer, answer_key: str) -> tuple[list[Block], list[list[Block]]]:
    """What ``chat.stopStream`` attaches under a streamed answer (Sources and the feedback
    buttons; the text itself was streamed), and the follow-ups with sources that did not fit."""
    first, more = answer_layout(answer, answer_key)
    text_part = re.compile(re.escape(ANSWER_BLOCK) + r"-\d+$")
    return [b for b in first if not text_part.match(str(b.get("block_id", "")))], more


def safe_markdown(text: str) -> str:
    """Model markdown made inert for a streamed message: Slack tokens written out, broadcasts
    broken, links shown with their target (``label (url)``)."""
    text = _SLACK_TOKEN.sub(lambda m: _plain_token(m.group(1)), text)
    text = _MD_LINK.sub(lambda m: shown_link(m.group(2), m.group(1)), text)
    text = text.replace("<!", "<\u200b!").replace("<@", "<\u200b@").replace("<#", "<\u200b#")
    return _LOOSE_BROADCAST.sub(lambda m: "@\u200b" + m.group(1), text)


def answer_blocks(answer: Answer, answer_key: str) -> list[Block]:
    """The final answer message: answer text, then Sources, then 👍/👎 (within Slack's limits)."""
    return answer_layout(answer, answer_key)[0]


def more_sources_text(blocks: list[Block]) -> str:
    return truncate("More sources: " + "; ".join(b["text"]["text"].split("\n", 1)[0] for b in blocks[1:]), MAX_FALLBACK)


def answer_fallback(answer: Answer) -> str:
    """Plain-text ``text`` for notifications and clients without blocks."""
    text = to_mrkdwn(answer.text)
    if sources := sources_line(answer):
        text += "\n\n" + sources
    return truncate(text, MAX_FALLBACK)


def sources_line(answer: Answer) -> str:
    """The cited sources on one line ("" when none): for plain-text answers."""
    if not (answer.grounded and answer.citations):
        return ""
    return "Sources: " + "; ".join(f"[{c.n}] {neutralise(c.title)} {c.pages}" for c in answer.citations)


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
def ingest_text(result: IngestResult, filename: str = "", link: str = "") -> str:
    """The reply to an ingest; ``link``: the file just shared (rather than the document's first
    upload, which may be in a conversation the reader cannot see)."""
    doc = result.document
    title = neutralise(doc.title or filename or "Untitled")
    if link or doc.link:
        title = slack_link(link or doc.link, title)
    if result.already_present:
        head = f":white_check_mark: *{title}* is already indexed here ({doc.pages} pages, {doc.chunks} chunks)."
    else:
        head = f":white_check_mark: Indexed *{title}*: {doc.pages} pages, {doc.chunks} chunks in {result.seconds:.1f} s."
    authors = ", ".join(neutralise(a) for a in doc.authors[:6]) + (" et al." if len(doc.authors) > 6 else "")
    lines = [head]
    if authors:
        lines.append(f"_{authors}_")
    lines += [f":information_source: {neutralise(note)}" for note in result.notes]
    lines.append("Ask about it with `/ask your question`, or mention me with a question.")
    return truncate("\n".join(lines), MAX_SECTION)


def arxiv_outcome_text(outcome: ArxivOutcome) -> str:
    if outcome.result is None:
        return f":x: `{neutralise(outcome.requested_id)}`: {neutralise(outcome.error or 'could not be added.')}"
    return ingest_text(outcome.result)


def error_text(message: str) -> str:
    return truncate(f":x: {message}", MAX_SECTION)


# --- the ingest queue ------------------------------------------------------------------------
QUEUE_LINES = 15  # items listed by /docs; the rest are counted


def _item(name: str) -> str:
    label = truncate(neutralise(name).replace("`", "'"), 120)
    return f"`{label}`"


def queued_text(name: str, ahead: int) -> str:
    where = "it is next in line" if ahead == 0 else f"{ahead} ahead of it"
    return f":inbox_tray: Queued {_item(name)} for indexing: {where}. I'll update this message when it starts."


def started_text(name: str, waited_s: float) -> str:
    return f":hourglass_flowing_sand: Indexing {_item(name)} now (it waited {waited_s:.0f} s in the queue)."


def queue_full_text(name: str, limit: int, *, per_channel: bool) -> str:
    if per_channel:
        return (
            f":x: {limit} documents are already waiting to be indexed in this channel, so I did not queue {_item(name)}. "
            "Share it again when some are done (`/docs` shows the queue)."
        )
    return (
        f":x: {limit} documents are waiting to be indexed in this workspace, so I did not queue {_item(name)}. "
        "Please share it again in a few minutes."
    )


def queue_text(entries: list[tuple[str, str, int | None, float]]) -> str:
    """``/docs``'s queue section: (name, user, ahead or None when running, seconds so far) per item."""
    lines = [f"*Being indexed or queued here* ({len(entries)})"]
    for name, user, ahead, seconds in entries[:QUEUE_LINES]:
        who = f"<@{user}>" if re.fullmatch(r"[UW][A-Z0-9]+", user or "") else neutralise(user or "?")
        if ahead is None:
            state = f"indexing now ({seconds:.0f} s)"
        else:
            state = "queued, next in line" if ahead == 0 else f"queued, {ahead} ahead"
        lines.append(f"• {_item(name)} from {who}: {state}")
    if len(entries) > QUEUE_LINES:
        lines.append(f"… and {len(entries) - QUEUE_LINES} more queued.")
    return truncate("\n".join(lines), MAX_SECTION)


# --- documents ----------------------------------------------------------------------------
def docs_blocks(docs: list[Document], page: int, queue: str = "") -> tuple[str, list[Block]]:
    """Page ``page`` (0-based) of the channel's documents, with a "Next page" button when more;
    ``queue`` (``queue_text``) first when something is being indexed or waiting."""
    text, blocks = _docs_blocks(docs, page)
    return (f"{queue}\n{text}", [section(queue), *blocks]) if queue else (text, blocks)


def _docs_blocks(docs: list[Document], page: int) -> tuple[str, list[Block]]:
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


FORGET_CONFIRM, FORGET_CANCEL = "citebot_forget_confirm", "citebot_forget_cancel"


def _who(user: str) -> str:
    return f"<@{user}>" if re.fullmatch(r"[UW][A-Z0-9]+", user or "") else neutralise(user or "?")


def forget_prompt(doc: Document, adder: str, asker: str) -> tuple[str, list[Block]]:
    """The ephemeral "remove this document?" with Remove / Cancel buttons; Remove carries the full
    id and who may press it (``asker``, checked when the command was typed)."""
    title = neutralise(doc.title or doc.document_id)
    text = f"Remove *{title}* from this channel?"
    detail = (
        f"{doc.pages} pages · added by {_who(adder)} · id `{neutralise(doc.document_id[:12])}`\n"
        "Nobody here can ask about it afterwards; share it again to bring it back."
    )
    buttons = [
        {
            "type": "button",
            "action_id": FORGET_CONFIRM,
            "style": "danger",
            "text": {"type": "plain_text", "text": "Remove"},
            "value": json.dumps({"d": doc.document_id, "u": asker}),
        },
        {"type": "button", "action_id": FORGET_CANCEL, "text": {"type": "plain_text", "text": "Cancel"}, "value": "-"},
    ]
    blocks = [section(f"{text}\n{detail}"), {"type": "actions", "block_id": "citebot-forget", "elements": buttons}]
    return text, blocks


def forget_refused_text(doc: Document, adder: str) -> str:
    return (
        f":x: Only {_who(adder)}, who added *{neutralise(doc.title or doc.document_id)}* here, "
        "or a workspace admin can remove it from this channel."
    )


FORGET_CANCELLED = "Nothing was removed."


def forgot_text(doc: Document) -> str:
    return f":wastebasket: Removed *{neutralise(doc.title or doc.document_id)}* from this channel ({doc.chunks} chunks)."


def cannot_post_text(*, in_dm: bool) -> str:
    if in_dm:
        return (
            "I can't post in a direct message between other people. Ask me in a channel I'm in, "
            "or in a DM with me (open citebot in the sidebar)."
        )
    return "I'm not a member of this channel, so I can't post here. Invite me with `/invite @citebot` and try again."


EXTERNAL_FILE = (
    "{name} is stored outside Slack ({where}), so I can't download it. "
    "Upload the PDF to Slack itself (drag it into this conversation) and I'll index it."
)


def external_file_text(name: str, where: str) -> str:
    return EXTERNAL_FILE.format(name=neutralise(name), where=neutralise(where or "an external service"))


# --- the assistant panel ------------------------------------------------------------------
PANEL_STATUS = "is searching the documents…"
PANEL_PROMPTS_TITLE = "Try asking"
MAX_PROMPTS = 4  # Slack shows at most four suggested prompts


def panel_greeting(where: str, documents: int) -> str:
    """The first message in the panel; ``where``: ``#channel`` when answering from the channel the
    user is viewing, "" for the DM's own documents."""
    if where and documents:
        return f"Hi! Ask me about the {documents} document{'s' if documents != 1 else ''} in {where}; answers cite pages."
    if where:
        return f"Hi! {where} has no documents yet. Share a PDF there, or drop one here to ask about it privately."
    if documents:
        return f"Hi! Ask me about the {documents} document{'s' if documents != 1 else ''} you shared with me here."
    return "Hi! Drop a PDF here (or use `/arxiv ID` in a channel) and ask me about it; answers cite pages."


def panel_prompts(docs: list[Document]) -> list[dict[str, str]]:
    """Up to four suggested prompts drawn from the documents (newest first)."""
    prompts: list[dict[str, str]] = []
    for d in sorted(docs, key=lambda d: d.added_at, reverse=True):
        title = " ".join((d.title or d.document_id).split())
        short = truncate(title, 60)
        prompts.append({"title": truncate(f"Summarise {short}", 75), "message": f"Summarise “{title}”."})
        if len(prompts) < MAX_PROMPTS and len(docs) < MAX_PROMPTS:
            prompts.append(
                {"title": truncate(f"Key results of {short}", 75), "message": f"What are the key results of “{title}”?"}
            )
        if len(prompts) >= MAX_PROMPTS:
            break
    return prompts[:MAX_PROMPTS]


# --- App Home -----------------------------------------------------------------------------
HOME_DOCS_PER_PAGE = 5
HOME_CHANNELS = 10  # a Home tab holds at most 100 blocks
HOME_PAGE, HOME_FORGET, HOME_ADD = "citebot_home_page", "citebot_home_forget", "citebot_home_add"
HOME_ARXIV_MODAL, HOME_ARXIV_BLOCK, HOME_ARXIV_INPUT = "citebot_home_arxiv", "citebot-arxiv-ids", "ids"


def _who(user: str) -> str:
    return f"<@{user}>" if re.fullmatch(r"[UW][A-Z0-9]+", user or "") else neutralise(user or "?")


def home_view(user: str, channels: list[tuple[str, str, list[Document]]], pages: dict[str, int], notice: str = "") -> Block:
    """The Home tab: per channel the user shares with the bot, its documents (title, pages, who
    added it, when) a page at a time; "Add an arXiv paper" per channel, "Forget" on the user's own."""
    blocks: list[Block] = [
        section("*Your documents in citebot*"),
        context(
            "The channels you share with citebot and what has been added to each. "
            "Answers only ever use a channel's own documents."
        ),
    ]
    if notice:
        blocks.append(section(notice))
    if not channels:
        blocks.append(
            section("You share no channel with citebot yet. Invite it with `/invite @citebot`, then share a PDF there.")
        )
    for channel, name, docs in channels[:HOME_CHANNELS]:
        count = (len(docs) + HOME_DOCS_PER_PAGE - 1) // HOME_DOCS_PER_PAGE
        page = max(0, min(pages.get(channel, 0), count - 1)) if count else 0
        head = f"*#{neutralise(name)}* — {len(docs)} document{'s' if len(docs) != 1 else ''}"
        if count > 1:
            head += f" (page {page + 1} of {count})"
        blocks += [
            {"type": "divider"},
            {
                "type": "section",
                "block_id": f"home-{channel}",
                "text": {"type": "mrkdwn", "text": head},
                "accessory": {
                    "type": "button",
                    "action_id": HOME_ADD,
                    "text": {"type": "plain_text", "text": "Add an arXiv paper"},
                    "value": channel,
                },
            },
        ]
        for d in docs[page * HOME_DOCS_PER_PAGE : (page + 1) * HOME_DOCS_PER_PAGE]:
            title = neutralise(d.title or d.document_id)
            when = neutralise(d.added_at[:16].replace("T", " "))
            block = section(f"*{truncate(title, 200)}*\n{d.pages} pages · added by {_who(d.added_by)} · {when}")
            if d.added_by == user:
                block["accessory"] = {
                    "type": "button",
                    "action_id": HOME_FORGET,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Forget"},
                    "value": json.dumps({"c": channel, "d": d.document_id}),
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Forget this document?"},
                        "text": {
                            "type": "mrkdwn",
                            "text": truncate(f"*{title}* will no longer be searched in #{neutralise(name)}.", 300),
                        },
                        "confirm": {"type": "plain_text", "text": "Forget"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                        "style": "danger",
                    },
                }
            blocks.append(block)
        buttons = [
            {
                "type": "button",
                "action_id": f"{HOME_PAGE}_{label.split()[0].lower()}",
                "text": {"type": "plain_text", "text": label},
                "value": json.dumps({"c": channel, "p": target}),
            }
            for label, target, shown in (("Previous page", page - 1, page > 0), ("Next page", page + 1, page + 1 < count))
            if shown
        ]
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
    if len(channels) > HOME_CHANNELS:
        blocks.append(
            context(f"_… and {len(channels) - HOME_CHANNELS} more channels: `/docs` in a channel lists its documents._")
        )
    return {"type": "home", "blocks": blocks}


def arxiv_modal(channel: str, name: str) -> Block:
    return {
        "type": "modal",
        "callback_id": HOME_ARXIV_MODAL,
        "private_metadata": channel,
        "title": {"type": "plain_text", "text": "Add an arXiv paper"},
        "submit": {"type": "plain_text", "text": "Add"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": HOME_ARXIV_BLOCK,
                "label": {"type": "plain_text", "text": truncate(f"arXiv IDs to add to #{name}", 150)},
                "element": {
                    "type": "plain_text_input",
                    "action_id": HOME_ARXIV_INPUT,
                    "placeholder": {"type": "plain_text", "text": "1706.03762 1810.04805"},
                },
            }
        ],
    }


# --- arXiv by words and link previews ---------------------------------------------------------
ARXIV_ADD = "citebot_arxiv_add"


def _match_text(m: Any) -> str:
    """A paper found on arXiv: title (year), authors, the abstract's first line."""
    authors = ", ".join(neutralise(a) for a in m.authors[:4]) + (" et al." if len(m.authors) > 4 else "")
    year = f" ({m.year})" if m.year else ""
    lines = [
        f"*{neutralise(m.title)}*{year} · `{neutralise(m.arxiv_id)}`",
        f"_{authors}_" if authors else "",
        neutralise(m.first_line),
    ]
    return truncate("\n".join(line for line in lines if line), 1500)


def _add_button(arxiv_id: str) -> Block:
    return {
        "type": "button",
        "action_id": ARXIV_ADD,
        "text": {"type": "plain_text", "text": "Add to this channel"},
        "value": arxiv_id,
    }


def arxiv_search_blocks(words: str, matches: list[Any]) -> tuple[str, list[Block]]:
    """The top matches of ``/arxiv search words``, each with "Add to this channel"."""
    if not matches:
        text = f"No arXiv paper matches “{neutralise(words)}”."
        return text, [section(text)]
    blocks: list[Block] = [section(f"*arXiv: top {len(matches)} for “{neutralise(truncate(words, 200))}”*")]
    for m in matches:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _match_text(m)}, "accessory": _add_button(m.arxiv_id)}
        )
    return f"Top {len(matches)} arXiv matches for “{neutralise(words)}”", blocks


def unfurl_blocks(match: Any) -> list[Block]:
    """The preview of an arxiv.org link, offering to add the paper to the channel."""
    return [section(_match_text(match)), {"type": "actions", "elements": [_add_button(match.arxiv_id)]}]


def arxiv_added_text(user: str, outcome: ArxivOutcome) -> str:
    return truncate(f"<@{user}> added a paper from arXiv.\n{arxiv_outcome_text(outcome)}", MAX_SECTION)
