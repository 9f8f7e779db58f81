"""Chat completions against any OpenAI-compatible endpoint (built once, shared)."""

from __future__ import annotations

import time
from collections.abc import Callable

from citebot.errors import ModelUnavailable
from citebot.settings import Settings

Messages = list[dict[str, str]]

# chat.update-friendly pacing: partial text is reported at most this often.
PARTIAL_EVERY_S = 0.8


class ChatModel:
    def __init__(self, settings: Settings, partial_every_s: float = PARTIAL_EVERY_S) -> None:
        import openai  # only with a configured model: the offline bot never loads it (~30 MB, ~0.3 s)

        self._api_error = openai.APIError
        self.model = settings.chat_model
        self.partial_every_s = partial_every_s
        self._client = openai.OpenAI(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url or None,
            timeout=settings.model_timeout_s,
            max_retries=settings.model_max_retries,
        )

    def complete(self, messages: Messages, on_partial: Callable[[str], None] | None = None, max_tokens: int = 800) -> str:
        """One chat completion; streamed when ``on_partial`` wants the text as it comes."""
        try:
            if on_partial is None:
                response = self._client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0, max_tokens=max_tokens
                )
                return response.choices[0].message.content or ""
            return self._stream(messages, on_partial, max_tokens)
        except self._api_error as error:
            raise ModelUnavailable(
                f"The language model failed ({type(error).__name__}) after retries; try again in a minute."
            ) from error

    def _stream(self, messages: Messages, on_partial: Callable[[str], None], max_tokens: int) -> str:
        parts: list[str] = []
        last = time.monotonic()
        stream = self._client.chat.completions.create(
            model=self.model, messages=messages, temperature=0, max_tokens=max_tokens, stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
                if time.monotonic() - last >= self.partial_every_s:
                    on_partial("".join(parts))
                    last = time.monotonic()
        return "".join(parts)


def build_chat_model(settings: Settings) -> ChatModel | None:
    """None when no model is configured: answers are then made from the passages themselves."""
    return ChatModel(settings) if settings.has_llm else None
