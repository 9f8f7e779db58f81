"""Run an aiohttp ``web.Application`` in a background thread, plus fault injection shared by the stand-ins.

``BackgroundServer`` owns a private event loop in a daemon thread and binds 127.0.0.1 on a free port,
so the same server works for sync tests, CLI subprocesses (pass ``.url`` in the environment) and async
tests (whose own loop is untouched)::

    with BackgroundServer(app) as server:
        requests.get(server.url + "/path")

Fault injection: a server owns a ``FaultQueue``; every request takes (removes) the first queued
``Fault`` whose ``path`` filter matches, waits ``fault.delay`` seconds and, if ``fault.status`` is set,
answers with that error instead of calling the handler. Every request is appended to a
``list[Recorded]`` log first (including faulted and unauthorised ones).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[["Fault", web.Request], web.StreamResponse]


@dataclass(frozen=True)
class Fault:
    """One injected failure, consumed by one request.

    status: HTTP status to answer with (None: answer normally, after ``delay``).
    delay: seconds to sleep before answering (provokes client timeouts).
    retry_after: seconds sent as ``Retry-After`` (and ``retry-after-ms``) with the error.
    path: only requests whose path contains this substring take the fault (e.g. "embeddings",
        "chat/completions", "/api/query", "/pdf/"); None matches every path.
    message: overrides the error message in the body.
    """

    status: int | None = None
    delay: float = 0.0
    retry_after: float | None = None
    path: str | None = None
    message: str | None = None

    def matches(self, path: str) -> bool:
        return self.path is None or self.path in path

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": f"{self.retry_after:g}", "retry-after-ms": str(int(self.retry_after * 1000))}


class FaultQueue:
    """Thread-safe FIFO of faults: tests append from their thread, the server takes from its loop."""

    def __init__(self) -> None:
        self._items: list[Fault] = []
        self._lock = threading.Lock()

    def append(self, fault: Fault) -> None:
        with self._lock:
            self._items.append(fault)

    def extend(self, faults: Iterable[Fault]) -> None:
        with self._lock:
            self._items.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def take(self, path: str) -> Fault | None:
        """Remove and return the first fault matching ``path``."""
        with self._lock:
            for i, fault in enumerate(self._items):
                if fault.matches(path):
                    return self._items.pop(i)
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass
class Recorded:
    """One request as received (before auth and faults)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None  # parsed JSON when the body is JSON, else raw text (None when empty)
    fault: Fault | None = None
    status: int | None = None  # the status answered (None while in flight)


def recording_middleware(log: list[Recorded], faults: FaultQueue, render_error: ErrorRenderer) -> Any:
    """Middleware that records each request in ``log`` and applies the next matching fault."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read() if request.can_read_body else b""
        body: Any = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        record = Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        log.append(record)
        fault = faults.take(request.path)
        record.fault = fault
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                response = render_error(fault, request)
                record.status = response.status
                return response
        response = await handler(request)
        record.status = response.status
        return response

    return middleware


class BackgroundServer:
    """Serve ``app`` on ``host`` from a daemon thread with its own event loop.

    ``port=0`` picks a free port; after ``start()`` it holds the bound port, so a stopped server
    restarts on the same URL. ``shutdown_timeout`` bounds how long ``stop()`` waits for handlers
    still running (e.g. sleeping in a delay fault).
    """

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0, shutdown_timeout: float = 0.5) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        if self._runner is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    def start(self) -> Self:
        if self._runner is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"standin-{type(self).__name__}", daemon=True)
        thread.start()
        try:
            self.port = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=30)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
            raise
        self._loop, self._thread = loop, thread
        return self

    async def _serve(self) -> int:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self.shutdown_timeout)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        return int(runner.addresses[0][1])

    @staticmethod
    async def _shutdown(runner: web.AppRunner) -> None:
        await runner.cleanup()
        # Handlers still sleeping in a delay fault outlive cleanup's grace period: cancel them.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None or runner is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(runner), loop).result(timeout=self.shutdown_timeout + 10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    """SIGTERM a child process (a `citebot serve` under test), then SIGKILL it if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
