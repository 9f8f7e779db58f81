"""A stand-in for the OpenAI HTTP API (embeddings and chat completions) on 127.0.0.1.

It speaks the real wire protocol, so the real ``openai`` client (and anything OpenAI-compatible)
works against ``OpenAIStandin().start().url + "/v1"``. Endpoints:

``POST /v1/embeddings``
    ``input`` is a string, a list of strings, or token arrays (a token id ``t`` is read as the word
    ``tok<t>``). ``encoding_format`` ``"float"`` (default on the wire) or ``"base64"`` (float32
    little-endian; the openai client asks for base64 unless told otherwise). ``dimensions`` overrides
    the server's dimension. Empty strings or more than 2048 inputs get a 400, as the real API does.
    Vectors: see ``embed``: deterministic feature hashing of words and character trigrams,
    L2-normalised, so texts sharing words are close (cosine) and retrieval over them works.

``POST /v1/chat/completions`` (non-streaming, and ``stream: true`` as server-sent events, with a
    final usage chunk when ``stream_options.include_usage``). The reply is chosen by ``reply_for``:

    1. ``next_replies`` (a queue tests fill) wins: the next scripted text is returned verbatim.
    2. Numbered sources are parsed from the user messages (from the system messages when the user
       messages have none): a line starting ``[n]`` (e.g. ``[1] Title — p. 3``) opens source n, whose
       text is the following lines up to the next ``[m]`` line, a ``Question:``/``Q:`` line, or the
       end of the message. (So an unlabelled question placed after the sources is read as part of
       the last source: label it ``Question:``.)
    3. Summary mode (a system message contains "summar"): with sources, the first sentence of each
       of the first three sources, each followed by ``[n]``; without sources, the first two sentences
       of the passage (the last user message; a short instruction line ending in ":" in its first
       three lines, like "Summarise this passage:", is skipped).
    4. Answer mode with sources: the question is the text after ``Question:``/``Q:``, else the last
       user message without sources, else the text before the first source. Each source is scored by
       the number of distinct question words (lower-cased, stop words removed) in its text; every
       source with the top score (at most two, lowest n first) contributes its best-overlapping
       sentence, whitespace collapsed but otherwise verbatim, followed by ``[n]``. Top score 0: the
       reply is ``NOT_FOUND_REPLY`` (no citation).
    5. No sources: ``NO_SOURCES_REPLY``.

    Sentences longer than 300 characters are cut at a word boundary. ``max_tokens`` /
    ``max_completion_tokens`` truncate the reply (``finish_reason: "length"``).

``GET /v1/models`` lists a few model ids.

Every request needs ``Authorization: Bearer <key>`` (any non-empty key, or exactly ``api_key`` when
given), else 401 with the real error body ``{"error": {"message", "type", "param", "code"}}``.

Token counts in ``usage`` and in the counters are whitespace-separated words, not BPE tokens.
Counters count requests that were answered with 200; ``requests`` logs every request received.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import time
import unicodedata
from collections import deque
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from aiohttp import web

from .background import BackgroundServer, Fault, FaultQueue, Recorded, recording_middleware

__all__ = ["Fault", "OpenAIStandin", "embed", "reply_for", "NOT_FOUND_REPLY", "NO_SOURCES_REPLY"]

NOT_FOUND_REPLY = "The provided sources do not contain an answer to this question."
NO_SOURCES_REPLY = "I have no sources to answer from."
MAX_SENTENCE_CHARS = 300
MAX_EMBEDDING_INPUTS = 2048

STOP_WORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it "
    "its me my of on or our so than that the their them then there these they this those to was we were "
    "what when where which who whom why will with would you your about also not no yes".split()
)
_WORD = re.compile(r"[a-z0-9]+")
_SOURCE_HEAD = re.compile(r"^\s*\[(\d+)\]")
_QUESTION_HEAD = re.compile(r"^\s*(?:question|q)\s*:\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[(\"'])")


# --- embeddings --------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric words after NFKC (so ligatures such as "ﬁ" become "fi")."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


@lru_cache(maxsize=200_000)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


def embed(text: str, dim: int = 256) -> list[float]:
    """Deterministic, L2-normalised hashed bag of features.

    Features: each word not in ``STOP_WORDS`` (weight 1.0) and each character trigram of those words
    padded with "#" (weight 0.25, so "transformer"/"transformers" stay close). Each feature is hashed
    (blake2b) to a bucket and a sign. Text without any feature embeds as the feature "<empty>".
    """
    vec = [0.0] * dim
    content = [w for w in words(text) if w not in STOP_WORDS] or ["<empty>"]
    for w in content:
        i, sign = _bucket("w:" + w, dim)
        vec[i] += sign
        padded = f"#{w}#"
        for k in range(len(padded) - 2):
            i, sign = _bucket("c:" + padded[k : k + 3], dim)
            vec[i] += 0.25 * sign
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return [x / norm for x in vec]


def count_tokens(text: str) -> int:
    """The stand-in's token count: whitespace-separated words."""
    return len(text.split())


# --- chat replies ------------------------------------------------------------------------------


def message_text(message: dict[str, Any]) -> str:
    """Text of a chat message whose content is a string or a list of ``{"type": "text"}`` parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def parse_sources(text: str) -> tuple[dict[int, str], str | None]:
    """Numbered sources in ``text`` (n -> body text) and the ``Question:`` text if present."""
    sources: dict[int, list[str]] = {}
    question: list[str] | None = None
    current: list[str] | None = None
    for line in text.splitlines():
        head = _SOURCE_HEAD.match(line)
        if head:
            current = sources.setdefault(int(head.group(1)), [])
            continue
        q = _QUESTION_HEAD.match(line)
        if q:
            question = [line[q.end() :]]
            current = question
            continue
        if current is not None:
            current.append(line)
    return {n: "\n".join(body).strip() for n, body in sources.items()}, (
        "\n".join(question).strip() if question is not None else None
    )


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` with whitespace collapsed, each cut to ``MAX_SENTENCE_CHARS``."""
    flat = " ".join(text.split())
    out = []
    for s in _SENTENCE_END.split(flat):
        if len(s) > MAX_SENTENCE_CHARS:
            s = s[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0]
        if s:
            out.append(s)
    return out


def _content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOP_WORDS}


def _best_sentence(text: str, question: set[str]) -> str:
    candidates = sentences(text) or [""]
    return max(candidates, key=lambda s: len(_content_words(s) & question))  # max keeps the first on ties


def _passage(text: str) -> str:
    lines = text.strip().splitlines()
    for i, line in enumerate(lines[:3]):
        if line.rstrip().endswith(":") and len(line) < 120:
            return "\n".join(lines[i + 1 :])
    return text


def _before_first_source(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _SOURCE_HEAD.match(line):
            return "\n".join(lines[:i])
    return text


def reply_for(messages: list[dict[str, Any]]) -> str:
    """The stand-in's deterministic reply to a chat request (see the module docstring)."""
    system = [message_text(m) for m in messages if m.get("role") in ("system", "developer")]
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    sources: dict[int, str] = {}
    question: str | None = None
    for text in users or system:
        found, q = parse_sources(text)
        sources.update(found)
        question = q or question
    if not sources and users:  # sources may also live in the system message
        for text in system:
            sources.update(parse_sources(text)[0])

    if "summar" in " ".join(system).lower():
        if sources:
            firsts = [(n, sentences(sources[n])) for n in sorted(sources)[:3]]
            return " ".join(f"{s[0]} [{n}]" for n, s in firsts if s) or NOT_FOUND_REPLY
        return " ".join(sentences(_passage(users[-1] if users else ""))[:2])

    if not sources:
        return NO_SOURCES_REPLY
    if question is None:
        plain = [t for t in users if not parse_sources(t)[0]]
        question = plain[-1] if plain else _before_first_source(users[-1] if users else "")
    qwords = _content_words(question)
    scores = {n: len(_content_words(body) & qwords) for n, body in sources.items()}
    top = max(scores.values())
    if top == 0:
        return NOT_FOUND_REPLY
    chosen = sorted(n for n, s in scores.items() if s == top)[:2]
    return " ".join(f"{_best_sentence(sources[n], qwords)} [{n}]" for n in chosen)


# --- server ------------------------------------------------------------------------------------


def _error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


_FAULT_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request (injected fault)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (injected fault)."),
    408: ("timeout", None, "Request timed out (injected fault)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (injected fault)."),
    500: ("server_error", None, "The server had an error while processing your request (injected fault)."),
    502: ("server_error", None, "Bad gateway (injected fault)."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later (injected fault)."),
}


def _render_fault(fault: Fault, request: web.Request) -> web.Response:
    status = fault.status or 500
    type_, code, message = _FAULT_KINDS.get(status, ("server_error", None, f"HTTP {status} (injected fault)."))
    return _error(status, fault.message or message, type_, code, headers=fault.headers())


class OpenAIStandin(BackgroundServer):
    """OpenAI API stand-in. ``with OpenAIStandin() as s: openai.OpenAI(base_url=s.url + "/v1", api_key="x")``.

    Test hooks (safe to use from the test thread):
      faults: FaultQueue        append ``Fault(...)``; ``path`` e.g. "embeddings" or "chat/completions"
      next_replies: deque[str]  scripted chat replies, used first-in first-out
      requests: list[Recorded]  every request received (``.body`` is the parsed JSON)
      chat_calls, embedding_calls, texts_embedded, embedding_tokens, prompt_tokens, completion_tokens
      reset()                   clears all of the above
    """

    def __init__(self, dim: int = 256, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.dim = dim
        self.api_key = api_key
        self.faults = FaultQueue()
        self.next_replies: deque[str] = deque()
        self.requests: list[Recorded] = []
        self.reset()
        app = web.Application(
            middlewares=[recording_middleware(self.requests, self.faults, _render_fault), self._auth],
            client_max_size=256 * 1024 * 1024,
        )
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        super().__init__(app, host=host, port=port)

    def reset(self) -> None:
        self.faults.clear()
        self.next_replies.clear()
        self.requests.clear()
        self.chat_calls = 0
        self.embedding_calls = 0
        self.texts_embedded = 0
        self.embedding_tokens = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the chat completion requests received."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[dict[str, Any]]:
        """Bodies of the embedding requests received."""
        return [r.body for r in self.requests if r.path.endswith("/embeddings")]

    # --- handlers ---

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        key = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        if not key:
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
            )
        if self.api_key is not None and key != self.api_key:
            return _error(
                401,
                f"Incorrect API key provided: {key[:3]}***. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        return await handler(request)

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.", "invalid_request_error")
        if not body.get("model"):
            return _error(400, "you must provide a model parameter", "invalid_request_error")
        return body

    async def _models(self, request: web.Request) -> web.Response:
        ids = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "text-embedding-3-large"]
        data = [{"id": i, "object": "model", "created": 1700000000, "owned_by": "system"} for i in ids]
        return web.json_response({"object": "list", "data": data})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        texts = _inputs(body.get("input"))
        if texts is None:
            return _error(
                400,
                "'input' must be a string, an array of strings or an array of token arrays.",
                "invalid_request_error",
                param="input",
            )
        if not texts or any(t == "" for t in texts):
            return _error(
                400,
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                "invalid_request_error",
                param="input",
            )
        if len(texts) > MAX_EMBEDDING_INPUTS:
            return _error(
                400,
                f"'$.input' is too long: at most {MAX_EMBEDDING_INPUTS} inputs are allowed.",
                "invalid_request_error",
                param="input",
            )
        dim = int(body.get("dimensions") or self.dim)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = embed(text, dim)
            value: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if as_base64 else vec
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(count_tokens(t) for t in texts)
        self.embedding_calls += 1
        self.texts_embedded += len(texts)
        self.embedding_tokens += tokens
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty array.", "invalid_request_error", param="messages")
        text = self.next_replies.popleft() if self.next_replies else reply_for(messages)
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit and count_tokens(text) > int(limit):
            text, finish = " ".join(text.split()[: int(limit)]), "length"
        prompt = sum(count_tokens(message_text(m)) for m in messages)
        completion = count_tokens(text)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        self.chat_calls += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        head = {
            "id": f"chatcmpl-standin{self.chat_calls}",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_standin",
            "service_tier": "default",
        }
        if not body.get("stream"):
            message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
            return web.json_response(
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
            out = {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            return {**out, "usage": None} if include_usage else out

        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        events += [chunk({"content": piece}, None) for piece in re.findall(r"\s*\S+", text)]
        events.append(chunk({}, finish))
        if include_usage:
            events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        for event in events:
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _inputs(value: Any) -> list[str] | None:
    """Embedding ``input`` as texts; token arrays become words ``tok<id>``. None when malformed."""

    def tokens(ids: Iterable[Any]) -> str:
        return " ".join(f"tok{t}" for t in ids)

    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return list(value)
        if value and all(isinstance(v, int) for v in value):
            return [tokens(value)]
        if all(isinstance(v, list) and all(isinstance(t, int) for t in v) for v in value):
            return [tokens(v) for v in value]
    return None
