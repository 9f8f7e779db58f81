"""Settings pointed at the stand-in servers, exactly as a user points them at the real services."""

from __future__ import annotations

from dataclasses import replace

from citebot.settings import Settings


def with_standins(settings: Settings, arxiv=None, openai=None, **changes) -> Settings:
    """Settings pointed at the stand-in servers, exactly as a user points them at real services."""
    if arxiv is not None:
        changes.update(arxiv_api_url=f"{arxiv.url}/api/query", arxiv_pdf_url=f"{arxiv.url}/pdf/{{id}}")
    if openai is not None:
        changes.update(
            openai_api_key="sk-test", openai_base_url=f"{openai.url}/v1", model_max_retries=3, model_timeout_s=5.0
        )
    return replace(settings, **changes)
