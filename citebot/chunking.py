"""Page texts → clean sentences → overlapping chunks that know their pages and their section.

PDF text comes as lines. Before sentences are cut, each line is classified: page numbers,
arXiv stamps and running headers (a line repeated at the top or bottom of many pages) are
dropped; section headings, figure/table captions and table rows become units of their own, so
none of them is ever glued to the sentence that follows. A chunk's text is its units joined by
newlines, so ``sentences(chunk.text)`` gives back the same units (excerpts and extractive
answers use them), cut once more where a figure or table cut a sentence in two. Each chunk also
knows the section heading it sits under (``Chunk.section``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from citebot.domain import Chunk
from citebot.pdf_text import PageText

Kind = Literal["text", "heading", "caption", "table"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
# A sentence end for quoting: before a lower-case or Greek word too, where PDF text glues a caption,
# a table's last line or a figure's axis labels to the body text it interrupts ("… for
# ResNet-50/101/152. parameter-free, …", "… as in SGD. β1=0 β1=0.9 … log10(α) Loss").
# A displayed equation's number ends one too ("… = softmax( QK T √dk )V (1) The two most …"), and a
# closing quote after a full stop ("… “The Annotated Transformer.” In this work …"), and a word opening
# a sentence after a displayed formula ("… pθ(yi|x,z,y1:i−1) Finally, we note …").
_GLUED_END = re.compile(
    r"(?<=[.!?])\s+(?=[\"'(\[]?[^\W_])|(?<=[.!?][”\"’])\s+(?=[A-Z])|(?:(?<=\(\d\))|(?<=\(\d\d\)))\s+(?=[A-Z][a-z])"
    r"|(?<=\))\s+(?=(?:The|We|In|Here|Our|This|These|It|Finally|Then|Note|Thus|Hence)\b)"
)
# A footnote printed into the text it annotates: its number glued to its first word or to a URL
# ("… the 34-layer 3We have experimented …", "… left. 1https://github.com/…"), and the mark
# after the sentence it annotates ("… passages in the end.5 Each passage …"), also after a closing
# quote ("… “The Annotated Transformer.”2 In this work …") or a one-letter name ("… heads as A.3 We
# primarily report …").
# A footnote's links run on into the sentence after them ("… ehhuang/ For all the following models …").
_AFTER_URL = re.compile(r"(?<=/)\s+(?=[A-Z][a-z])")
_FOOTNOTE = re.compile(r"(?<=\s)(?=\d{1,2}(?:https?://|[A-Z][a-z]))")
_FOOTNOTE_MARK = re.compile(
    r"^\d{1,2}(?=[A-Z][a-z])|(?<=[a-z)][.!?])\d{1,2}(?=\s|$)|(?<=[.!?][”\"’])\d{1,2}(?=\s|$)"
    r"|(?<=[a-z] [A-Z][.!?])(?<!Table [A-Z].)(?<!Appendix [A-Z].)(?<!Section [A-Z].)(?<!Figure [A-Z].)"
    r"\d{1,2}(?=\s+[A-Z][a-z])"
)
# A sentence piece ending like this is not a sentence end ("et al. 2017", "Fig. 3", "e.g. X",
# "the Wikipedia dump from Dec. 20, 2018").
_ABBREVIATION = re.compile(
    r"(?:\b(?:al|Fig|Figs|Eq|Eqs|Sec|Secs|vs|cf|No|approx|resp|Tab|i\.e|e\.g|etc"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.|\b[A-Z]\.)$"
)
# A one-letter name ending a sentence after a lower-case word ("… the number of heads as A."), not
# an initial ("G. E. Hinton", "by J. Smith").
_LETTER_NAME_END = re.compile(r"(?<=[a-z] )[A-Z]\.$")
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE)
_ARXIV_STAMP = re.compile(r"^arXiv:\d{4}\.\d{4,5}(?:v\d+)?\s*\[[^\]]*\]")
_NUMBERED_HEADING = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[A-H](?:\.\d{1,2}){0,2})\s+([A-Z][^\d.!?:;,=()\[\]]{1,70})$"
)
_NAMED_HEADINGS = frozenset(
    "abstract introduction background references bibliography acknowledgements acknowledgments acknowledgement "
    "conclusion conclusions discussion appendix".split()
) | {"related work", "future work", "experimental setup", "supplementary material"}
# A caption's part for one panel of a figure: "(right) Training cost over 45 epochs."
_PANEL = re.compile(r"\((?:left|right|top|bottom|middle|center|centre)\)\s", re.IGNORECASE)
_CAPTION = re.compile(r"^(?:Table|Figure|Fig\.)\s*[A-Z]?\d+[:.]\s")
_NUMERIC_TOKEN = re.compile(r"^[\d.,%±×·−+\-/()\[\]∗*]+$")
_REFERENCE_HEADINGS = frozenset({"references", "bibliography"})
# A heading printed on the line of its section's first sentence ("2.2 Retriever: DPR The retrieval
# component …"): a section number, at most this many words, then a word opening a sentence.
# The number may be glued to an upper-case heading ("7EXTENSIONS 7.1 ADAMAX In Adam, …").
_SECTION_NUMBER = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[A-H](?:\.\d{1,2}){1,2})(?:\s+|(?=[A-Z]{2}))[A-Z]")
RUN_IN_HEADING_MAX_WORDS = 12
_SENTENCE_OPENERS = frozenset("The We In Here Our This These It To For As A An".split())
_HEADING_SMALL_WORDS = frozenset("of and for the in on with to a an via from by or vs versus".split())
# A sentence of prose has lower-case words between its names and numbers; a figure's labels
# ("Tok M Question Paragraph BERT E[CLS] E1 E2"), a table's header row or a reference entry
# ("[10] G.E. Hinton, J.L. McClelland.") has almost none.
_LOWER_WORD = re.compile(r"[a-z]+[,;:.]?")
PROSE_MIN_LOWER_SHARE = 0.15
# A sentence a figure cut runs on into the figure's labels ("… and then use R words from history
# and w(t-2) w(t+1) … CBOW Skip-gram", "… for the model BERT (Ours) Trm Trm Trm … ..."): it does
# not end as a sentence does, and its last words are not lower-case words.
LABELS_TAIL_WORDS = 6
# … or it is a table's header row ("Model Vector Training Accuracy [%] Training time
# Dimensionality words [days] Semantic Syntactic Total"): no sentence end, no comma (a byline has
# them), and capitalised words make half of it or more.
TITLE_CASE_SHARE = 0.5
_SENTENCE_ENDING = re.compile(r"[^.\s]\s?[.!]$")
# … and a sentence cut off by a page, column or equation ends on a word that cannot end one
# ("… and then use R words from history and", "The training complexity of this architecture is
# proportional to").
_DANGLING_WORDS = frozenset(
    "a an the and or nor but of to in on for with by from as at that which than is are was were be".split()
)


@dataclass(frozen=True)
class Unit:
    """One piece of page text: a sentence, a heading, a caption sentence or a table row."""

    text: str
    kind: Kind = "text"
    page: int = 0


def _is_table_row(line: str) -> bool:
    tokens = line.split()
    if len(tokens) < 2 or line.endswith((".", "?", "!")):
        return False
    numeric = sum(bool(_NUMERIC_TOKEN.match(t)) for t in tokens)
    return numeric >= 2 and numeric / len(tokens) >= 0.4


def _heading(line: str, after_sentence_end: bool) -> bool:
    if line.lower().rstrip(".:") in _NAMED_HEADINGS:
        return True
    match = _NUMBERED_HEADING.match(line)
    return bool(match and after_sentence_end and len(match.group(1).split()) <= 8)


def running_headers(pages: list[str]) -> set[str]:
    """Lines (digits ignored) at the top or bottom of at least three pages and a third of them."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for text in pages:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        counts.update({_shape(line) for line in lines[:2] + lines[-2:]})
    floor = max(3, len(pages) // 3)
    return {shape for shape, n in counts.items() if n >= floor and not shape.strip("# ") == ""}


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip())


def _ends_on_a_letter_name(before: str, after: str) -> bool:
    return bool(_LETTER_NAME_END.search(before)) and after.split(" ", 1)[0] in _SENTENCE_OPENERS


def _split(text: str, end: re.Pattern[str] = _SENTENCE_END) -> list[str]:
    pieces = [p.strip() for p in end.split(text) if p.strip()]
    merged: list[str] = []
    for piece in pieces:
        # "as A. We …" ends a sentence: a one-letter name (a variable) before a word that opens one
        if merged and _ABBREVIATION.search(merged[-1]) and not _ends_on_a_letter_name(merged[-1], piece):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def units(text: str, page: int = 0, headers: frozenset[str] | set[str] = frozenset()) -> list[Unit]:
    """The clean units of one page's (or one chunk's) text, in order."""
    out: list[Unit] = []
    buffer: list[str] = []
    caption = False

    def flush() -> None:
        nonlocal caption
        if buffer:
            joined = " ".join(buffer)
            for i, sentence in enumerate(_split(joined)):
                out.append(Unit(sentence, "caption" if caption and i == 0 else "text", page))
            buffer.clear()
        caption = False

    for raw in text.splitlines():
        line = raw.strip()
        if not line or _PAGE_NUMBER.match(line) or _ARXIV_STAMP.match(line) or (headers and _shape(line) in headers):
            continue
        ended = not buffer or buffer[-1].endswith((".", "!", "?", ":"))
        if _heading(line, ended):
            flush()
            out.append(Unit(line, "heading", page))
        elif _CAPTION.match(line):
            flush()
            buffer.append(line)
            caption = True
        elif _is_table_row(line):
            flush()
            out.append(Unit(line, "table", page))
        else:
            buffer.append(line)
    flush()
    return out


def sentences(text: str) -> list[str]:
    """The sentences of a text (page or chunk), without page numbers, headings, captions or
    table rows glued to them. Headings, captions and table rows are returned as their own items;
    the tail of a sentence a figure or a table cut (it starts in lower case) is an item too, and
    so is a run-in heading ("3 Dense Passage Retriever (DPR) We focus …") or a footnote printed
    into the text, without its number (its links apart from the sentence they run on into)."""
    return [
        part
        for u in units(text)
        for note in _FOOTNOTE.split(u.text)
        for line in _AFTER_URL.split(note)
        for piece in _split(_FOOTNOTE_MARK.sub("", line).strip(), _GLUED_END)
        for part in _run_in_heading(piece)
    ]


def _run_in_heading(piece: str) -> list[str]:
    """A numbered heading printed on the line of its first sentence, cut off it: the heading ends
    before a word that opens a sentence ("The", "We", …) or a capitalised word followed by a
    lower-case one that is not a heading's small word ("Models need", not "Latency and")."""
    if not _SECTION_NUMBER.match(piece):
        return [piece]
    words = piece.split(" ")
    for i in range(2, len(words) - 1):
        word, after = words[i], words[i + 1]
        opens = word in _SENTENCE_OPENERS or (
            word[:1].isupper() and after.isalpha() and after.islower() and after not in _HEADING_SMALL_WORDS
        )
        if opens:
            heading = " ".join(words[:i])  # a heading, not a sentence or a reference entry ("1 D. C. Johnston, Adv.")
            return [heading, " ".join(words[i:])] if i <= RUN_IN_HEADING_MAX_WORDS and ". " not in heading else [piece]
    return [piece]


def is_prose(sentence: str) -> bool:
    """A sentence fit to quote as an answer: not a heading, caption, table row or fragment, nor a
    sentence cut off mid-way or running on into a figure's labels, and not a question (a paper's
    "Does BERT really need …?" states nothing)."""
    (unit,) = units(sentence)[:1] or (Unit("", "table"),)
    if unit.kind != "text" or _CAPTION.match(sentence) or _PANEL.match(sentence) or sentence[:1].islower():
        return False  # a sentence starting in lower case is the tail of one a figure or table cut
    if sentence.rstrip().endswith("?"):
        return False
    words = sentence.split()
    if not _SENTENCE_ENDING.search(sentence) and (
        words[-1] in _DANGLING_WORDS
        or not any(_LOWER_WORD.fullmatch(w) for w in words[-LABELS_TAIL_WORDS:])
        or ("," not in sentence and sum(w[:1].isupper() for w in words) >= TITLE_CASE_SHARE * len(words))
    ):
        return False
    letters = sum(ch.isalpha() for ch in sentence)
    lower = sum(bool(_LOWER_WORD.fullmatch(w)) for w in words)
    return (
        len(words) >= 5 and letters >= 0.55 * len(sentence.replace(" ", "")) and lower >= PROSE_MIN_LOWER_SHARE * len(words)
    )


def chunk_pages(document_id: str, pages: list[PageText], size: int, overlap: int, title: str = "") -> list[Chunk]:
    """Overlapping chunks of about ``size`` characters; each chunk's ``context`` is the document
    title and the section heading(s) it sits under (indexed for search, never shown as text).
    Running headers are found across all ``pages``."""
    chunker = Chunker(document_id, size, overlap, title)
    headers = running_headers([p.text for p in pages])
    return [chunk for page in pages for chunk in chunker.add(page, headers)] + chunker.finish()


# Pages arrive in batches, so a document's running headers are found per window of about this many
# pages (``running_headers`` of the window: a line at the top or bottom of at least 3 and a third of
# its pages), and each window's chunks flow on to embedding while later pages are still being read.
# A document of up to 1.5 windows is one window (its chunks are those of ``chunk_pages``). On the
# nine test papers 387 of 390 chunks are those of ``chunk_pages``; the book loses a few more
# printer's marks.
HEADER_WINDOW_PAGES = 8


def header_windows(page_total: int) -> list[int]:
    """The last page number (1-based) of each header window of a ``page_total``-page document."""
    windows = max(1, round(page_total / HEADER_WINDOW_PAGES))
    return [round((i + 1) * page_total / windows) for i in range(windows)]


def stream_chunks(
    document_id: str, page_batches: Iterable[list[PageText]], page_total: int, size: int, overlap: int, title: str = ""
) -> Iterator[Chunk]:
    """``chunk_pages`` for pages that arrive in order, batch by batch: each header window's chunks
    as soon as its last page has arrived (the chunk that is still filling waits for the next)."""
    chunker = Chunker(document_id, size, overlap, title)
    ends = iter(header_windows(page_total))
    window_end = next(ends)
    window: list[PageText] = []

    def flush() -> Iterator[Chunk]:
        headers = running_headers([p.text for p in window])
        for page in window:
            yield from chunker.add(page, headers)
        window.clear()

    for batch in page_batches:
        for page in batch:
            while page.number > window_end:
                yield from flush()
                window_end = next(ends, page_total)
            window.append(page)
    yield from flush()
    yield from chunker.finish()


class Chunker:
    """Units in, overlapping chunks out: a page at a time, in page order. Each chunk is
    returned once it is complete; ``finish()`` returns the last one."""

    def __init__(self, document_id: str, size: int, overlap: int, title: str = "") -> None:
        self.document_id, self.size, self.overlap, self.title = document_id, size, overlap, title
        self.count = 0  # chunks returned so far
        self._section = ""
        self._current: list[tuple[Unit, str]] = []
        self._length = 0
        self._fresh = 0  # units in `current` not already in the previous chunk

    def add(self, page: PageText, headers: frozenset[str] | set[str] = frozenset()) -> list[Chunk]:
        """The chunks completed by this page's units."""
        out: list[Chunk] = []
        for item in self._tagged(page, headers):
            if self._current and self._length + len(item[0].text) + 1 > self.size and self._fresh:
                out.append(self._emit())
                kept: list[tuple[Unit, str]] = []
                kept_length = 0
                for previous in reversed(self._current):
                    if kept_length + len(previous[0].text) > self.overlap:
                        break
                    kept.insert(0, previous)
                    kept_length += len(previous[0].text) + 1
                self._current, self._length, self._fresh = kept, kept_length, 0
            self._current.append(item)
            self._length += len(item[0].text) + 1
            self._fresh += 1
        return out

    def finish(self) -> list[Chunk]:
        return [self._emit()] if self._current and self._fresh else []

    def _tagged(self, page: PageText, headers: frozenset[str] | set[str]) -> Iterator[tuple[Unit, str]]:
        """The page's units tagged with their section; units longer than a chunk are cut."""
        size = self.size
        for unit in units(page.text, page.number, headers):
            if unit.kind == "heading":
                self._section = unit.text
            text = unit.text
            while len(text) > size:
                cut = text.rfind(" ", 0, size)
                cut = cut if cut > size // 2 else size
                yield Unit(text[:cut].strip(), unit.kind, page.number), self._section
                text = text[cut:].strip()
            if text:
                yield Unit(text, unit.kind, page.number), self._section

    def _emit(self) -> Chunk:
        current = self._current
        sections = list(dict.fromkeys(s for _, s in current if s))
        chunk = Chunk(
            document_id=self.document_id,
            index=self.count,
            text="\n".join(u.text for u, _ in current),
            page_start=current[0][0].page,
            page_end=current[-1][0].page,
            context="\n".join(filter(None, [self.title.strip(), "; ".join(sections)[:300]])),
        )
        self.count += 1
        return chunk


def is_reference_section(context: str) -> bool:
    """True when a chunk's last section (from its context) is the reference list."""
    last = context.splitlines()[-1].rsplit(";", 1)[-1].strip().lower() if context.strip() else ""
    return last.rstrip(".:") in _REFERENCE_HEADINGS or any(last.endswith(" " + name) for name in _REFERENCE_HEADINGS)
