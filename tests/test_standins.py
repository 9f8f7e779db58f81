"""The stand-in servers speak the real protocols: checked with the real openai and arxiv clients."""

from __future__ import annotations

import base64
import math
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import arxiv
import openai
import pytest

from tests.standins.arxiv_server import DEFAULT_TESTDATA as TESTDATA
from tests.standins.arxiv_server import ArxivStandin
from tests.standins.background import Fault
from tests.standins.openai_server import NO_SOURCES_REPLY, NOT_FOUND_REPLY, OpenAIStandin, embed

pytestmark = pytest.mark.skipif(not (TESTDATA / "arxiv").is_dir(), reason="shared testdata not found")


@pytest.fixture(scope="module")
def oai_server() -> Iterator[OpenAIStandin]:
    with OpenAIStandin(dim=64) as server:
        yield server


@pytest.fixture
def oai(oai_server: OpenAIStandin) -> Iterator[OpenAIStandin]:
    oai_server.reset()
    yield oai_server
    oai_server.reset()


@pytest.fixture
def client(oai: OpenAIStandin) -> openai.OpenAI:
    return openai.OpenAI(base_url=oai.url + "/v1", api_key="test", max_retries=2, timeout=10)


@pytest.fixture(scope="module")
def arxiv_server() -> Iterator[ArxivStandin]:
    with ArxivStandin(TESTDATA) as server:
        yield server


@pytest.fixture
def ax(arxiv_server: ArxivStandin) -> Iterator[ArxivStandin]:
    arxiv_server.reset()
    yield arxiv_server
    arxiv_server.reset()


def arxiv_client(server: ArxivStandin, num_retries: int = 0) -> arxiv.Client:
    client = arxiv.Client(delay_seconds=0, num_retries=num_retries)
    client.query_url_format = server.url + "/api/query?{}"
    return client


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


SOURCES_PROMPT = (
    "Sources:\n"
    "[1] Attention Is All You Need — p. 2\n"
    "The Transformer follows an encoder-decoder structure. It uses stacked self-attention layers.\n"
    "[2] Adam: A Method for Stochastic Optimization — p. 1\n"
    "Adam is an algorithm for first-order gradient-based optimization.\n"
    "It computes adaptive learning rates from estimates of first and second moments of the gradients.\n"
    "\n"
    "Question: How does Adam compute adaptive learning rates?"
)


# --- OpenAI ------------------------------------------------------------------------------------


def test_embeddings_default_base64_and_float(client: openai.OpenAI, oai: OpenAIStandin) -> None:
    texts = ["Adam uses adaptive moment estimates", "adaptive moment estimation in Adam", "residual networks"]
    res = client.embeddings.create(model="text-embedding-3-small", input=texts)  # the client asks for base64
    assert oai.embedding_requests[-1]["encoding_format"] == "base64"
    vecs = [d.embedding for d in res.data]
    assert [d.index for d in res.data] == [0, 1, 2] and all(len(v) == 64 for v in vecs)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5) for v in vecs)
    assert cosine(vecs[0], vecs[1]) > 0.5 > cosine(vecs[0], vecs[2])
    assert res.usage.prompt_tokens == res.usage.total_tokens == 12  # whitespace words

    floats = client.embeddings.create(model="m", input="residual networks", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vecs[2], abs=1e-6)
    raw = client.embeddings.create(model="m", input="x", encoding_format="base64", dimensions=8)
    assert len(struct.unpack("<8f", base64.b64decode(raw.data[0].embedding))) == 8
    assert oai.embedding_calls == 3 and oai.texts_embedded == 5
    assert embed("The Transformer") == embed("the transformer!")  # deterministic, case-insensitive


def test_embeddings_reject_empty_input(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="m", input=["ok", ""])
    assert err.value.status_code == 400 and err.value.body["type"] == "invalid_request_error"


def test_chat_cites_the_best_overlapping_source(client: openai.OpenAI, oai: OpenAIStandin) -> None:
    res = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer only from the sources and cite them as [n]."},
            {"role": "user", "content": SOURCES_PROMPT},
        ],
    )
    text = res.choices[0].message.content
    assert text == ("It computes adaptive learning rates from estimates of first and second moments of the gradients. [2]")
    assert res.choices[0].finish_reason == "stop" and res.object == "chat.completion"
    assert res.usage.completion_tokens == len(text.split())
    assert res.usage.total_tokens == res.usage.prompt_tokens + res.usage.completion_tokens
    assert oai.chat_calls == 1 and oai.completion_tokens == res.usage.completion_tokens
    assert oai.chat_requests[0]["messages"][1]["content"] == SOURCES_PROMPT


def test_chat_modes_and_scripted_replies(client: openai.OpenAI, oai: OpenAIStandin) -> None:
    def ask(*messages: tuple[str, str]) -> str:
        res = client.chat.completions.create(model="m", messages=[{"role": r, "content": c} for r, c in messages])
        return res.choices[0].message.content or ""

    assert ask(("user", "Hello there")) == NO_SOURCES_REPLY
    assert (
        ask(("user", SOURCES_PROMPT.replace("How does Adam compute adaptive learning rates?", "Zebras?"))) == NOT_FOUND_REPLY
    )
    passage = "Summarise this passage:\nDeeper networks are harder to train. We present residual learning. More."
    assert (
        ask(("system", "You summarise passages."), ("user", passage))
        == "Deeper networks are harder to train. We present residual learning."
    )
    oai.next_replies.append("scripted")
    assert ask(("user", SOURCES_PROMPT)) == "scripted"
    assert (
        ask(
            ("user", "[1] T — p. 1\nSome text.\nQuestion: text?"),
        )
        == "Some text. [1]"
    )


def test_chat_streaming_with_usage(client: openai.OpenAI, oai: OpenAIStandin) -> None:
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": SOURCES_PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("[2]") and text.startswith("It computes adaptive")
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())


def test_max_tokens_truncates(client: openai.OpenAI) -> None:
    res = client.chat.completions.create(model="m", messages=[{"role": "user", "content": SOURCES_PROMPT}], max_tokens=3)
    assert res.choices[0].finish_reason == "length" and res.choices[0].message.content == "It computes adaptive"


def test_client_retries_through_429_and_500(client: openai.OpenAI, oai: OpenAIStandin) -> None:
    oai.faults.extend([Fault(status=429, retry_after=0.05, path="embeddings"), Fault(status=500, path="embeddings")])
    oai.faults.append(Fault(status=503, retry_after=0.05, path="chat"))
    res = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert res.choices[0].message.content == NO_SOURCES_REPLY
    res = client.embeddings.create(model="m", input="hello")
    assert len(res.data) == 1 and len(oai.faults) == 0
    assert [r.status for r in oai.requests] == [503, 200, 429, 500, 200]
    assert oai.embedding_calls == 1 and oai.chat_calls == 1


def test_errors_have_the_real_shape(oai: OpenAIStandin) -> None:
    no_retry = openai.OpenAI(base_url=oai.url + "/v1", api_key="test", max_retries=0)
    oai.faults.append(Fault(status=429))
    with pytest.raises(openai.RateLimitError) as err:
        no_retry.embeddings.create(model="m", input="x")
    assert err.value.body == {
        "message": "Rate limit reached for requests (injected fault).",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    oai.api_key = "right"
    try:
        with pytest.raises(openai.AuthenticationError) as auth:
            no_retry.embeddings.create(model="m", input="x")
        assert auth.value.code == "invalid_api_key"
    finally:
        oai.api_key = None
    req = urllib.request.Request(oai.url + "/v1/embeddings", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(req)
    assert missing.value.code == 401 and b'"invalid_request_error"' in missing.value.read()


def test_delay_fault_provokes_client_timeout(oai: OpenAIStandin) -> None:
    impatient = openai.OpenAI(base_url=oai.url + "/v1", api_key="test", max_retries=0, timeout=0.2)
    oai.faults.append(Fault(delay=1.0, path="chat"))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - started < 1.0
    # the stand-in still answers the abandoned request a second later: let it, so that it is not
    # counted as the next test's chat call
    deadline = time.monotonic() + 5
    while oai.chat_calls == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert oai.chat_calls == 1


async def test_async_client(oai: OpenAIStandin) -> None:
    async with openai.AsyncOpenAI(base_url=oai.url + "/v1", api_key="test") as aclient:
        res = await aclient.embeddings.create(model="m", input=["a b", "c d"])
    assert len(res.data) == 2 and oai.texts_embedded == 2


# --- arXiv -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "title", "first_author"),
    [
        (
            ["1111.2011"],
            "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit",
            "James M. Murray",
        ),
        (["1706.03762"], "Attention Is All You Need", "Ashish Vaswani"),
        (["astro-ph/0601001"], None, None),
        (["1605.08386"], "Heat-bath random walks with Markov bases", "Caprice Stanley"),
        (
            ["2104.08663"],
            "BEIR: A Heterogenous Benchmark for Zero-shot Evaluation of Information Retrieval Models",
            "Nandan Thakur",
        ),
    ],
)
def test_arxiv_lookup(ax: ArxivStandin, ids: list[str], title: str | None, first_author: str | None) -> None:
    results = list(arxiv_client(ax).results(arxiv.Search(id_list=ids)))
    assert len(results) == 1
    r = results[0]
    assert r.title and r.authors and r.get_short_id().startswith(ids[0])
    if title:
        assert r.title == title and r.authors[0].name == first_author
    assert r.pdf_url and r.pdf_url.startswith(("https://arxiv.org/pdf/", "http://arxiv.org/pdf/"))


def test_arxiv_versions_and_several_ids(ax: ArxivStandin) -> None:
    client = arxiv_client(ax)
    [v5] = client.results(arxiv.Search(id_list=["1706.03762v5"]))
    assert v5.entry_id == "http://arxiv.org/abs/1706.03762v5"
    results = list(client.results(arxiv.Search(id_list=["1810.04805", "0000.0000", "1512.03385", "2104.12255v1"])))
    assert [r.get_short_id() for r in results] == ["1810.04805v2", "1512.03385v1", "2104.12255v1"]
    assert results[2].title == "0"


def test_arxiv_unknown_and_invalid(ax: ArxivStandin) -> None:
    client = arxiv_client(ax)
    assert list(client.results(arxiv.Search(id_list=["0000.0000"]))) == []
    assert list(client.results(arxiv.Search(id_list=["9912.99999"]))) == []
    with pytest.raises(arxiv.HTTPError) as err:
        list(client.results(arxiv.Search(id_list=["abc"])))
    assert err.value.status == 400
    with pytest.raises(arxiv.HTTPError):
        list(client.results(arxiv.Search(id_list=["1706.03762", "not-an-id"])))
    recorded = (TESTDATA / "arxiv" / "id_abc_s0_m100.atom.xml").read_bytes()
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(ax.url + "/api/query?id_list=abc&start=0&max_results=100")
    assert raw.value.read() == recorded


def test_arxiv_search_query(ax: ArxivStandin) -> None:
    results = list(arxiv_client(ax).results(arxiv.Search(query='ti:"dense passage retrieval"')))
    assert [r.get_short_id() for r in results] == ["2004.04906v3"]
    testing = list(arxiv_client(ax).results(arxiv.Search(query="testing", max_results=25)))
    assert 1 <= len(testing) <= 25


def test_arxiv_retries_after_503(ax: ArxivStandin) -> None:
    ax.faults.append(Fault(status=503, path="/api/query"))
    [result] = arxiv_client(ax, num_retries=1).results(arxiv.Search(id_list=["1412.6980"]))
    assert result.title == "Adam: A Method for Stochastic Optimization"
    assert [r.status for r in ax.requests] == [503, 200] and ax.queries == 1


def test_arxiv_pdfs(ax: ArxivStandin) -> None:
    for path in ("/pdf/1111.2011", "/pdf/1706.03762v5", "/pdf/1301.3781.pdf"):
        with urllib.request.urlopen(ax.url + path) as res:
            assert res.headers["Content-Type"] == "application/pdf" and res.read(5) == b"%PDF-"
    expected = (TESTDATA / "pdfs" / "2004.04906.pdf").read_bytes()
    with urllib.request.urlopen(ax.url + "/pdf/2004.04906v3") as res:
        assert res.read() == expected
    for path in ("/pdf/0000.0000", "/pdf/hep-th/9901001", "/pdf/..%2F..%2Fetc%2Fpasswd"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(ax.url + path)
        assert err.value.code == 404
    assert ax.pdf_downloads == 4
