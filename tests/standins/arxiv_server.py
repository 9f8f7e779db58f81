"""A stand-in for the arXiv API (``/api/query``, Atom) and PDF downloads (``/pdf/<id>``) on 127.0.0.1.

Material comes from the shared testdata directory (``testdata/arxiv/recorded_json/*.json``: real
responses recorded from export.arxiv.org with their URL and status; ``testdata/arxiv/legacy2016_*``;
``testdata/pdfs/<id>.pdf``). Point the real ``arxiv`` client at it with
``client.query_url_format = server.url + "/api/query?{}"``.

``GET /api/query`` (``id_list``, ``search_query``, ``start``, ``max_results``; ``sortBy``/``sortOrder``
are accepted and ignored):

* An ``id_list`` query (no ``search_query``, ``start=0``) that was recorded gets the recorded body and
  status byte for byte: e.g. ``1605.08386``, ``astro-ph/0601001``, ``2104.12255v1``,
  ``0808.05394,1707.08567``, ``0000.0000`` (empty feed), ``abc`` (HTTP 400, Atom error feed).
  ``1111.2011`` and ``1111.2011v2`` get the legacy (2016-format) recorded response.
* Any other query is answered with a feed in the current (2026) format, built like the recorded
  ``id_0000.0000`` feed, from the pool of known entries: every ``<entry>`` in the recorded files
  (verbatim), plus entries synthesised in the recorded entry format (copied from ``1605.08386``) for
  the papers in ``testdata/pdfs`` without a recording (``SYNTHETIC``: real titles, authors,
  categories; abstracts abridged; dates approximate).
  - ``id_list``: one entry per known id, in request order; unknown well-formed ids are dropped (as
    arXiv does); a malformed id (not ``YYMM.NNNN[N][vN]`` nor ``archive[.XX]/YYMMNNN[vN]``) makes the
    whole request an HTTP 400 error feed like the recorded ``abc`` one. Versions: a synthesised entry
    carries the requested version (else the latest); a recorded entry is returned as recorded.
  - ``search_query``: field prefixes (``all:``, ``ti:``...), boolean operators, quotes and brackets
    are dropped; an entry matches when every remaining term occurs (case-insensitive) in its text.
    With ``id_list`` too, the listed entries are filtered by the query.
  - ``start``/``max_results`` page the matches; ``opensearch:totalResults`` is the match count.
* PDF links inside entries stay the real ``https://arxiv.org/pdf/...`` URLs: the product builds PDF URLs
  from its own configurable template (point it at ``server.url + "/pdf/{id}"``).

``GET /pdf/<id>`` (also ``<id>v<N>``, ``<id>.pdf``, old-style ``archive/NNNNNNN``): ``pdfs/<id>.pdf``
(old-style: ``/`` replaced by ``_``) as ``application/pdf``; 404 for unknown ids.

Faults: ``server.faults.append(Fault(status=503, path="/api/query"))`` or ``Fault(delay=...)``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from tests.paths import TESTDATA

from .background import BackgroundServer, Fault, FaultQueue, Recorded, recording_middleware

__all__ = ["ArxivStandin", "Fault", "Paper", "SYNTHETIC", "DEFAULT_TESTDATA", "valid_id"]

DEFAULT_TESTDATA = TESTDATA

_NEW_ID = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
_OLD_ID = re.compile(r"^[a-z]+(-[a-z]+)*(\.[A-Z]{2})?/\d{7}(v\d+)?$")
_VERSION = re.compile(r"v(\d+)$")
_ENTRY = re.compile(r"^[ \t]*<entry>.*?</entry>\n?", re.DOTALL | re.MULTILINE)
_ENTRY_ID = re.compile(r"<id>\s*https?://arxiv\.org/abs/(\S+?)\s*</id>")
_TAG = re.compile(r"<[^>]+>")
_QUERY_NOISE = re.compile(r"\b(?:all|ti|au|abs|co|jr|cat|rn|id):|\b(?:AND|OR|ANDNOT)\b|[\"()]")


def valid_id(arxiv_id: str) -> bool:
    """Whether arXiv would accept the id's format (new-style or old-style, optional version)."""
    return bool(_NEW_ID.match(arxiv_id) or _OLD_ID.match(arxiv_id))


def base_id(arxiv_id: str) -> str:
    """The id without its version suffix: ``1706.03762v5`` -> ``1706.03762``."""
    return _VERSION.sub("", arxiv_id)


@dataclass(frozen=True)
class Paper:
    """Metadata for a synthesised entry (the format copied from the recorded 1605.08386 entry)."""

    arxiv_id: str
    latest: int
    title: str
    authors: tuple[str, ...]
    summary: str
    categories: tuple[str, ...]
    published: str
    updated: str
    comment: str | None = None

    def entry(self, version: int | None = None) -> str:
        vid = f"{self.arxiv_id}v{version or self.latest}"
        cats = "".join(f'    <category term="{c}" scheme="http://arxiv.org/schemas/atom"/>\n' for c in self.categories)
        comment = f"    <arxiv:comment>{escape(self.comment)}</arxiv:comment>\n" if self.comment else ""
        authors = "".join(f"    <author>\n      <name>{escape(a)}</name>\n    </author>\n" for a in self.authors)
        return (
            "  <entry>\n"
            f"    <id>http://arxiv.org/abs/{vid}</id>\n"
            f"    <title>{escape(self.title)}</title>\n"
            f"    <updated>{self.updated}</updated>\n"
            f'    <link href="https://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>\n'
            f'    <link href="https://arxiv.org/pdf/{vid}" rel="related" type="application/pdf" title="pdf"/>\n'
            f"    <summary>{escape(self.summary)}</summary>\n"
            f"{cats}"
            f"    <published>{self.published}</published>\n"
            f"{comment}"
            f'    <arxiv:primary_category term="{self.categories[0]}"/>\n'
            f"{authors}"
            "  </entry>\n"
        )


SYNTHETIC: tuple[Paper, ...] = (
    Paper(
        "1706.03762",
        7,
        "Attention Is All You Need",
        (
            "Ashish Vaswani",
            "Noam Shazeer",
            "Niki Parmar",
            "Jakob Uszkoreit",
            "Llion Jones",
            "Aidan N. Gomez",
            "Lukasz Kaiser",
            "Illia Polosukhin",
        ),
        "The dominant sequence transduction models are based on complex recurrent or convolutional neural "
        "networks in an encoder-decoder configuration. The best performing models also connect the encoder and "
        "decoder through an attention mechanism. We propose a new simple network architecture, the Transformer, "
        "based solely on attention mechanisms, dispensing with recurrence and convolutions entirely.",
        ("cs.CL", "cs.LG"),
        "2017-06-12T17:57:34Z",
        "2023-08-02T00:41:18Z",
        "15 pages, 5 figures",
    ),
    Paper(
        "1810.04805",
        2,
        "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
        ("Jacob Devlin", "Ming-Wei Chang", "Kenton Lee", "Kristina Toutanova"),
        "We introduce a new language representation model called BERT, which stands for Bidirectional Encoder "
        "Representations from Transformers. Unlike recent language representation models, BERT is designed to "
        "pre-train deep bidirectional representations from unlabeled text by jointly conditioning on both left "
        "and right context in all layers.",
        ("cs.CL",),
        "2018-10-11T00:50:01Z",
        "2019-05-24T20:37:26Z",
    ),
    Paper(
        "1512.03385",
        1,
        "Deep Residual Learning for Image Recognition",
        ("Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"),
        "Deeper neural networks are more difficult to train. We present a residual learning framework to ease "
        "the training of networks that are substantially deeper than those used previously.",
        ("cs.CV",),
        "2015-12-10T19:51:55Z",
        "2015-12-10T19:51:55Z",
        "Tech report",
    ),
    Paper(
        "1412.6980",
        9,
        "Adam: A Method for Stochastic Optimization",
        ("Diederik P. Kingma", "Jimmy Ba"),
        "We introduce Adam, an algorithm for first-order gradient-based optimization of stochastic objective "
        "functions, based on adaptive estimates of lower-order moments. The method is straightforward to "
        "implement, is computationally efficient, has little memory requirements, is invariant to diagonal "
        "rescaling of the gradients, and is well suited for problems that are large in terms of data and/or "
        "parameters.",
        ("cs.LG",),
        "2014-12-22T13:54:29Z",
        "2017-01-30T01:27:54Z",
        "Published as a conference paper at the 3rd International Conference for Learning Representations, San Diego, 2015",
    ),
    Paper(
        "1301.3781",
        3,
        "Efficient Estimation of Word Representations in Vector Space",
        ("Tomas Mikolov", "Kai Chen", "Greg Corrado", "Jeffrey Dean"),
        "We propose two novel model architectures for computing continuous vector representations of words from "
        "very large data sets. The quality of these representations is measured in a word similarity task, and "
        "the results are compared to the previously best performing techniques based on different types of "
        "neural networks.",
        ("cs.CL",),
        "2013-01-16T18:24:43Z",
        "2013-09-07T00:30:40Z",
    ),
    Paper(
        "2005.11401",
        4,
        "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
        (
            "Patrick Lewis",
            "Ethan Perez",
            "Aleksandra Piktus",
            "Fabio Petroni",
            "Vladimir Karpukhin",
            "Naman Goyal",
            "Heinrich Küttler",
            "Mike Lewis",
            "Wen-tau Yih",
            "Tim Rocktäschel",
            "Sebastian Riedel",
            "Douwe Kiela",
        ),
        "Large pre-trained language models have been shown to store factual knowledge in their parameters, and "
        "achieve state-of-the-art results when fine-tuned on downstream NLP tasks. However, their ability to "
        "access and precisely manipulate knowledge is still limited, and hence on knowledge-intensive tasks, "
        "their performance lags behind task-specific architectures.",
        ("cs.CL", "cs.LG"),
        "2020-05-22T21:34:34Z",
        "2021-04-12T15:42:13Z",
        "Accepted at NeurIPS 2020",
    ),
    Paper(
        "2004.04906",
        3,
        "Dense Passage Retrieval for Open-Domain Question Answering",
        (
            "Vladimir Karpukhin",
            "Barlas Oğuz",
            "Sewon Min",
            "Patrick Lewis",
            "Ledell Wu",
            "Sergey Edunov",
            "Danqi Chen",
            "Wen-tau Yih",
        ),
        "Open-domain question answering relies on efficient passage retrieval to select candidate contexts, "
        "where traditional sparse vector space models, such as TF-IDF or BM25, are the de facto method. In this "
        "work, we show that retrieval can be practically implemented using dense representations alone, where "
        "embeddings are learned from a small number of questions and passages by a simple dual-encoder framework.",
        ("cs.CL",),
        "2020-04-10T17:36:17Z",
        "2020-09-30T20:57:04Z",
        "EMNLP 2020",
    ),
    Paper(
        "2104.08663",
        4,
        "BEIR: A Heterogenous Benchmark for Zero-shot Evaluation of Information Retrieval Models",
        ("Nandan Thakur", "Nils Reimers", "Andreas Rücklé", "Abhishek Srivastava", "Iryna Gurevych"),
        "Existing neural information retrieval (IR) models have often been studied in homogeneous and narrow "
        "settings, which has considerably limited insights into their out-of-distribution (OOD) generalization "
        "capabilities. To address this, and to facilitate researchers to broadly evaluate the effectiveness of "
        "their models, we introduce Benchmarking-IR (BEIR), a robust and heterogeneous evaluation benchmark for "
        "information retrieval.",
        ("cs.IR", "cs.AI", "cs.CL"),
        "2021-04-17T23:29:55Z",
        "2021-10-21T11:15:08Z",
        "Accepted at NeurIPS 2021 Dataset and Benchmark Track",
    ),
)

_FEED_HEAD = "<?xml version='1.0' encoding='UTF-8'?>\n" + (
    '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" '
    'xmlns="http://www.w3.org/2005/Atom">\n'
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _feed(query: str, id_list: str, start: int, max_results: int, total: int, entries: list[str]) -> str:
    """A current-format feed, structured like the recorded ``id_0000.0000`` response."""
    shown = f"search_query={query}&id_list={id_list}&start={start}&max_results={max_results}"
    link = "https://arxiv.org/api/query?" + urlencode(
        {"search_query": query, "start": start, "max_results": max_results, "id_list": id_list}, safe=":,/"
    )
    digest = hashlib.sha1(shown.encode()).digest().hex()[:27]
    return (
        _FEED_HEAD
        + f"  <id>https://arxiv.org/api/{digest}</id>\n"
        + f"  <title>arXiv Query: {escape(shown)}</title>\n"
        + f"  <updated>{_now()}</updated>\n"
        + f'  <link href={quoteattr(link)} type="application/atom+xml"/>\n'
        + f"  <opensearch:itemsPerPage>{max_results}</opensearch:itemsPerPage>\n"
        + f"  <opensearch:totalResults>{total}</opensearch:totalResults>\n"
        + f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n"
        + "".join(entries)
        + "</feed>\n"
    )


def _error_feed(bad_id: str) -> str:
    """The HTTP 400 body arXiv sends for a malformed id (as recorded for ``abc``)."""
    anchor = f"https://arxiv.org/api/errors#incorrect_id_format_for_{bad_id}"
    now = _now()
    return (
        _FEED_HEAD
        + "  <id>https://arxiv.org/</id>\n  <title>arXiv Search Results</title>\n"
        + f"  <updated>{now}</updated>\n"
        + "  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>\n"
        + "  <opensearch:totalResults>1</opensearch:totalResults>\n"
        + "  <opensearch:startIndex>0</opensearch:startIndex>\n"
        + f"  <entry>\n    <id>{escape(anchor)}</id>\n    <title>Error</title>\n    <updated>{now}</updated>\n"
        + f'    <link href={quoteattr(anchor)} rel="alternate" type="text/html"/>\n'
        + f"    <summary>incorrect id format for {escape(bad_id)}</summary>\n"
        + "    <author>\n      <name>arXiv api core</name>\n    </author>\n  </entry>\n</feed>\n"
    )


def _render_fault(fault: Fault, request: web.Request) -> web.Response:
    status = fault.status or 503
    return web.Response(status=status, text=fault.message or f"HTTP {status} (injected fault)\n", headers=fault.headers())


class ArxivStandin(BackgroundServer):
    """arXiv API + PDF stand-in.

    Test hooks: ``faults`` (FaultQueue; ``path`` e.g. "/api/query" or "/pdf/"), ``requests``
    (list[Recorded], ``.query`` holds the decoded parameters), ``queries`` and ``pdf_downloads``
    (counts of answered requests), ``reset()``.
    """

    def __init__(self, testdata: Path | str = DEFAULT_TESTDATA, host: str = "127.0.0.1", port: int = 0) -> None:
        self.testdata = Path(testdata)
        self.pdf_dir = self.testdata / "pdfs"
        self.recorded: dict[str, tuple[int, bytes]] = {}  # id_list -> (status, body)
        self.entries: dict[str, str] = {}  # base id -> recorded <entry> text
        self._load()
        self.synthetic = {p.arxiv_id: p for p in SYNTHETIC}
        self.faults = FaultQueue()
        self.requests: list[Recorded] = []
        self.reset()
        app = web.Application(middlewares=[recording_middleware(self.requests, self.faults, _render_fault)])
        app.router.add_get("/api/query", self._query)
        app.router.add_get("/pdf/{arxiv_id:.+}", self._pdf)
        super().__init__(app, host=host, port=port)

    def reset(self) -> None:
        self.faults.clear()
        self.requests.clear()
        self.queries = 0
        self.pdf_downloads = 0

    @property
    def known_ids(self) -> list[str]:
        """Base ids the API knows (recorded entries first, then synthesised)."""
        return list(self.entries) + [i for i in self.synthetic if i not in self.entries]

    def _load(self) -> None:
        arxiv_dir = self.testdata / "arxiv"
        for path in sorted((arxiv_dir / "recorded_json").glob("*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            params = parse_qs(urlsplit(record["url"]).query, keep_blank_values=True)
            body = record["body"].encode("utf-8")
            if params.get("id_list", [""])[0] and not params.get("search_query", [""])[0]:
                self.recorded[params["id_list"][0]] = (int(record["status_code"]), body)
            if record["status_code"] == 200:
                self._add_entries(body.decode("utf-8"))
        legacy = arxiv_dir / "legacy2016_id_list=1111.2011v2.atom.xml"
        if legacy.exists():
            body = legacy.read_bytes()
            self.recorded["1111.2011"] = self.recorded["1111.2011v2"] = (200, body)
            self._add_entries(body.decode("utf-8"))

    def _add_entries(self, feed: str) -> None:
        for match in _ENTRY.finditer(feed):
            found = _ENTRY_ID.search(match.group(0))
            if found:
                self.entries.setdefault(base_id(found.group(1)), match.group(0))

    def _entry(self, arxiv_id: str) -> str | None:
        if (text := self.entries.get(base_id(arxiv_id))) is not None:
            return text
        if (paper := self.synthetic.get(base_id(arxiv_id))) is not None:
            version = _VERSION.search(arxiv_id)
            return paper.entry(int(version.group(1)) if version else None)
        return None

    async def _query(self, request: web.Request) -> web.Response:
        q = request.query
        query = q.get("search_query", "").strip()
        id_list = q.get("id_list", "").strip()
        try:
            start = max(0, int(q.get("start", "0")))
            max_results = max(0, int(q.get("max_results", "10")))
        except ValueError:
            return web.Response(status=400, text="start and max_results must be integers\n")
        self.queries += 1
        ids = [i.strip() for i in id_list.split(",") if i.strip()]
        if ids and not query and start == 0 and ",".join(ids) in self.recorded:
            status, body = self.recorded[",".join(ids)]
            return web.Response(status=status, body=body, content_type="application/atom+xml", charset="utf-8")
        if bad := next((i for i in ids if not valid_id(i)), None):
            return web.Response(status=400, text=_error_feed(bad), content_type="application/atom+xml")
        if ids:
            entries = [e for e in map(self._entry, ids) if e is not None]
        elif query:
            entries = [e for e in map(self._entry, self.known_ids) if e is not None]
        else:
            entries = []
        if query:
            terms = _QUERY_NOISE.sub(" ", query).lower().split()
            entries = [e for e in entries if all(t in _TAG.sub(" ", e).lower() for t in terms)]
        page = entries[start : start + max_results]
        text = _feed(query, id_list, start, max_results, len(entries), page)
        return web.Response(text=text, content_type="application/atom+xml")

    async def _pdf(self, request: web.Request) -> web.Response:
        arxiv_id = request.match_info["arxiv_id"].removesuffix(".pdf")
        path = self.pdf_dir / f"{base_id(arxiv_id).replace('/', '_')}.pdf"
        if not valid_id(arxiv_id) or not path.is_file():
            return web.Response(status=404, text=f"Paper {arxiv_id} not found\n")
        self.pdf_downloads += 1
        return web.Response(body=path.read_bytes(), content_type="application/pdf")
