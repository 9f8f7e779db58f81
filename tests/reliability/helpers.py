"""Helpers for the reliability suite: threads with results, waiting, time bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def run_in_thread(fn: Callable[[], Any], name: str = "reliability") -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``fn`` in a daemon thread; the dict gets ``result`` or ``error`` and ``seconds``."""
    out: dict[str, Any] = {}

    def target() -> None:
        began = time.perf_counter()
        try:
            out["result"] = fn()
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            out["error"] = error
        finally:
            out["seconds"] = time.perf_counter() - began

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread, out


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


def bounded(fn: Callable[[], Any], timeout: float) -> Any:
    """Call ``fn`` in a thread and give up (raise TimeoutError) after ``timeout`` seconds."""
    thread, out = run_in_thread(fn, name="bounded")
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{getattr(fn, '__name__', fn)} did not return within {timeout}s")
    if "error" in out:
        raise out["error"]
    return out.get("result")
