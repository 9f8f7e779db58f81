"""Fixtures for the Slack bot tests; the helpers live in tests/bot/harness.py (importable by name)."""

from tests.bot.harness import *  # noqa: F401,F403  (fixtures are found by pytest in this namespace)
