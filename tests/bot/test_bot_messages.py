"""Rendering: markdown → mrkdwn, neutralising untrusted text, Slack's limits, option parsing."""

from __future__ import annotations

import pytest

from bot import messages
from bot.answering import UsageError, parse_ask, thread_history
from citebot.domain import Answer, Chunk, Citation, Document, Passage
from tests.standins.slack_server import blocks_error


def _citation(n: int, excerpt: str = "We used the Adam optimizer.", title: str = "Attention Is All You Need") -> Citation:
    chunk = Chunk(document_id="d1", index=n, text=excerpt, page_start=7, page_end=7 if n % 2 else 8)
    passage = Passage(
        chunk=chunk, chunk_id=f"c{n}", title=title, link="https://standin.slack.com/files/U1/F1/a.pdf", score=0.9
    )
    return Citation(n=n, passage=passage, excerpt=excerpt)


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __also__", "*bold* and *also*"),
        ("*italic* text", "_italic_ text"),
        ("# Heading\nbody", "*Heading*\nbody"),
        (
            "see [the paper](https://arxiv.org/abs/1706.03762?a=1&b=2)",
            "see the paper (https://arxiv.org/abs/1706.03762?a=1&amp;b=2)",
        ),
        ("- one\n- two", "• one\n• two"),
        ("~~gone~~", "~gone~"),
        ("`**kept**` in code", "`**kept**` in code"),
        ("[evil](javascript:alert(1))", "[evil](javascript:alert(1))"),
        ("[https://x.example/a](https://x.example/a)", "https://x.example/a"),
        ("[arxiv.org/abs/1706.03762](https://evil.example/p)", "arxiv.org/abs/1706.03762 (https://evil.example/p)"),
    ],
)
def test_markdown_to_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert messages.to_mrkdwn(markdown) == mrkdwn


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<!channel> hello", "@\u200bchannel hello"),
        ("<!here|here> and <!everyone>", "@\u200bhere and @\u200beveryone"),
        ("ping <@U123ABC> in <#C42|general>", "ping @U123ABC in #general"),
        ("plain @channel and @here", "plain @\u200bchannel and @\u200bhere"),
        ("<https://evil.example|click me>", "click me (https://evil.example)"),
        ("<https://evil.example>", "https://evil.example"),
        ("a < b > c & d &amp; e", "a &lt; b &gt; c &amp; d &amp; e"),
        ("<!subteam^S1|@oncall> now", "@oncall now"),
    ],
)
def test_neutralise(text: str, shown: str) -> None:
    assert messages.neutralise(text) == shown


def test_long_answers_are_split_and_overflow_sources_move_to_follow_ups() -> None:
    answer = Answer(
        question="q",
        text=("A paragraph of answer text [1]. " * 60 + "\n\n") * 3,
        citations=[_citation(n, "x" * 2000) for n in range(1, 80)],
        uncited=[],
    )
    blocks, more = messages.answer_layout(answer, "C1:1.2")
    assert blocks_error(blocks) is None and all(blocks_error(m) is None for m in more)
    answer_parts = [b for b in blocks if b.get("block_id", "").startswith(messages.ANSWER_BLOCK)]
    assert len(answer_parts) >= 2
    assert any("more sources in the next message" in str(b) for b in blocks)
    assert blocks[-1]["block_id"] == messages.FEEDBACK_BLOCK and blocks[-1]["type"] == "context_actions"
    shown = str(blocks) + str(more)
    assert all(f"*[{n}]*" in shown for n in range(1, 80))  # every source is shown somewhere


def test_twenty_sources_fit_slacks_total_block_text() -> None:
    """Issue 11.9: ~13k characters of blocks in one message is refused by Slack (msg_blocks_too_long)."""
    answer = Answer(
        question="q",
        text="The answer [1] " * 350,
        citations=[_citation(n, "A long excerpt about attention. " * 40) for n in range(1, 21)],
        uncited=[],
    )
    blocks, more = messages.answer_layout(answer, "C1:1.2")
    assert blocks_error(blocks) is None and more and all(blocks_error(m) is None for m in more)


def test_feedback_value_fits_2000_characters_after_json_escaping() -> None:
    question = '"\\' * 700  # every character doubles when JSON-escaped
    block = messages.feedback_block("C1:1.2", question)
    buttons = block["elements"][0]["positive_button"], block["elements"][0]["negative_button"]
    assert blocks_error([block]) is None and all(len(b["value"]) <= 2000 for b in buttons)
    assert messages.feedback_of(block)["q"].startswith('"\\"\\')


def test_hostile_document_text_cannot_ping_or_link() -> None:
    answer = Answer(
        question="q",
        text="Per the doc: <!channel> **urgent** <@U999> [1]",
        citations=[_citation(1, "<!here> excerpt <https://phish.example|login>", title="<!everyone> Title")],
        uncited=[],
    )
    shown = str(messages.answer_blocks(answer, "C1:1.2")) + messages.answer_fallback(answer)
    for token in ("<!channel>", "<!here>", "<!everyone>", "<@U999>", "<https://phish.example|"):
        assert token not in shown
    assert "login (https://phish.example)" in shown  # a link from a document shows its target


def test_ungrounded_answers_have_no_sources() -> None:
    answer = Answer(
        question="q",
        text="I couldn't find that in the documents added here.",
        citations=[],
        uncited=[_citation(1)],
        grounded=False,
    )
    blocks = messages.answer_blocks(answer, "C1:1.2")
    assert "Sources" not in str(blocks) and "Attention" not in str(blocks)


def test_docs_are_paginated() -> None:
    docs = [
        Document(
            document_id=f"doc{i}",
            title=f"Paper {i}",
            source="slack",
            pages=3,
            chunks=9,
            added_by="U1",
            added_at="2025-01-01T10:00:00",
        )
        for i in range(45)
    ]
    text, blocks = messages.docs_blocks(docs, 0)
    assert "page 1 of 3" in text and "Paper 19" in str(blocks) and "Paper 20" not in str(blocks)
    assert blocks[-1]["elements"][-1]["value"] == "1"
    _, last = messages.docs_blocks(docs, 2)
    assert "Paper 44" in str(last) and [e["text"]["text"] for e in last[-1]["elements"]] == ["Previous page"]


def test_parse_ask_options() -> None:
    options = parse_ask("--top-k 3 --alpha=0.2 what is it?")
    assert (options.top_k, options.alpha, options.question) == (3, 0.2, "what is it?")
    options = parse_ask("--summary")
    assert options.mode == "summary" and options.question
    for bad in ("", "   ", "--top-k x q", "--alpha 3 q", "--frobnicate q"):
        with pytest.raises(UsageError):
            parse_ask(bad)


@pytest.mark.parametrize(
    "question",
    [
        "What's the model's size?",
        'What does "attention" mean \\ here?',
        "Is --top-k a flag in the paper?",
        "a < b & c > d",
    ],
)
def test_parse_ask_keeps_the_question_verbatim(question: str) -> None:
    assert parse_ask(question).question == question
    assert parse_ask(f"--top-k 4 {question}").question == question


def test_thread_history_roles() -> None:
    thread = [
        {
            "ts": "1.0",
            "bot_id": "B1",
            "user": "UB",
            "text": "<@U1> asked: first?",
            "blocks": [{"type": "section", "block_id": messages.QUESTION_BLOCK}],
        },
        {
            "ts": "1.1",
            "bot_id": "B1",
            "user": "UB",
            "text": "answer one",
            "blocks": [{"type": "section", "block_id": messages.ANSWER_BLOCK + "-0"}],
        },
        {"ts": "1.2", "user": "U1", "text": "<@UB> second?"},
        {"ts": "1.3", "user": "U1", "text": "now"},
    ]
    assert thread_history(thread, bot_user_id="UB", bot_id="B1", before_ts="1.3") == [
        ("user", "first?"),
        ("assistant", "answer one"),
        ("user", "second?"),
    ]
