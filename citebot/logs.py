"""Logging is configured here and only here, never at import.

The front ends call ``configure`` once at start (the CLI in ``main``, the Slack bot in
``serve``); PDF parse worker processes call ``configure_parse_worker`` when they start. Library
code only asks for loggers (``logging.getLogger(__name__)``).
"""

from __future__ import annotations

import logging

from citebot.errors import CitebotError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Hamilton logs every exception raised in a node, with a traceback and a banner.
HAMILTON_LOGGERS = ("hamilton.driver", "hamilton.execution.graph_functions")


class ExpectedErrorsFilter(logging.Filter):
    """Hamilton logs every node exception with a traceback and a 'join our Slack' banner. A
    CitebotError is bad input with a message for the user, not a failure: keep it out of logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "Need help with Hamilton" in record.getMessage():
            return False
        return not (record.exc_info and isinstance(record.exc_info[1], CitebotError))


class RootLevelFilter(logging.Filter):
    """weaviate-client sets INFO on its own logger when imported (a start-up line on every
    connect); a filter survives that and keeps it to the level configured here (-v shows it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.getLogger().getEffectiveLevel()


_EXPECTED_ERRORS = ExpectedErrorsFilter()
_ROOT_LEVEL = RootLevelFilter()


def configure(level: int | str) -> None:
    """Set up logging for a front end: ``level`` for our messages (``"INFO"``, ``logging.WARNING`` ...)."""
    level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    logging.basicConfig(level=level, format=FORMAT, force=True)
    _quiet_libraries()
    for name in HAMILTON_LOGGERS:
        logger = logging.getLogger(name)
        if _EXPECTED_ERRORS not in logger.filters:
            logger.addFilter(_EXPECTED_ERRORS)
    weaviate = logging.getLogger("weaviate-client")
    if _ROOT_LEVEL not in weaviate.filters:
        weaviate.addFilter(_ROOT_LEVEL)


def configure_parse_worker() -> None:
    """In a PDF parse worker process (which starts without the parent's logging set-up)."""
    _quiet_libraries()


def _quiet_libraries() -> None:
    # pypdf warns about every odd object in a malformed PDF; the user gets one clear error instead.
    logging.getLogger("pypdf").setLevel(logging.ERROR)


def silent(name: str) -> logging.Logger:
    """A logger that drops everything, for a library call whose failures we report ourselves."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    return logger
