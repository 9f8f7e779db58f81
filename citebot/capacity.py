"""Separate capacity per kind of work: thread pools that do not share threads, and a bounded,
fair queue in front of long work.

Why this exists: every blocking call of the Slack bot used to go through asyncio's one default
thread pool (``asyncio.to_thread``, ``min(32, cores + 4)`` threads, six on two cores). Six long
ingests held all six threads, so the event claim that ``/ask`` needs before it posts anything,
and the question itself, waited behind them for minutes. Now each kind of work has its own
``Pool``, and long work (indexing documents) waits its turn in a ``FairQueue`` that bounds both
how many items run at once and how many may wait.

Why here (``citebot/``) and not in ``dataflows/app.py``: the queue is a policy of a front end that
serves many people at once (the Slack bot: many channels, shares arriving at any time). The CLI
indexes one person's files one after another and gains nothing from it, and the ``Citebot``
facade stays a plain blocking API. So the building block lives on the lowest floor, knows
nothing about Slack or documents (lanes are any hashable key, items any value), and ``bot/``
uses it. It is asyncio-based: all methods are called on the event loop, never from threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Pool:
    """A named thread pool for one kind of blocking work; ``await pool.run(fn, ...)`` is
    ``asyncio.to_thread`` on this pool's own threads (context variables are carried over).

    ``niceness`` > 0 lowers the CPU priority of the pool's threads (Linux schedules threads
    individually) and of processes they start, so background work yields the cores, and with
    them the GIL, to interactive work when both want them.
    """

    def __init__(self, name: str, threads: int, niceness: int = 0) -> None:
        self.name = name
        self.threads = max(1, threads)
        self._executor = ThreadPoolExecutor(
            self.threads, thread_name_prefix=f"citebot-{name}", initializer=_lower_priority, initargs=(niceness,)
        )

    async def run(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Stop taking work; running calls finish in the background, queued ones are dropped."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _lower_priority(niceness: int) -> None:
    if niceness > 0 and hasattr(os, "setpriority"):
        try:
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + niceness))
        except OSError:  # not permitted here: run at normal priority
            pass


class QueueFull(Exception):
    """The queue refuses an item: ``per_lane`` tells whether the lane's or the whole queue's
    ``limit`` of waiting items was reached. The front end words the message for its users."""

    def __init__(self, limit: int, *, per_lane: bool) -> None:
        super().__init__(f"{'lane' if per_lane else 'queue'} full ({limit} waiting)")
        self.limit, self.per_lane = limit, per_lane


@dataclass(eq=False)
class Ticket(Generic[T]):
    """One item's place in a ``FairQueue``. ``async with ticket:`` waits for its turn and gives
    the slot back at exit (also on error or cancellation)."""

    queue: FairQueue[T]
    lane: Hashable
    item: T
    entered_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    _granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    _released: bool = False

    @property
    def state(self) -> Literal["waiting", "running", "done"]:
        return "done" if self._released else ("running" if self.started_at is not None else "waiting")

    @property
    def ahead(self) -> int:
        """Items that will start before this one (0 when it is next or already running)."""
        return self.queue.ahead_of(self)

    async def wait(self) -> None:
        """Until this item may run."""
        try:
            await asyncio.shield(self._granted)
        except asyncio.CancelledError:
            self.release()
            raise

    def release(self) -> None:
        """Leave the queue (waiting) or give the slot back (running); idempotent."""
        if not self._released:
            self._released = True
            self.queue._leave(self)

    async def __aenter__(self) -> Ticket[T]:
        await self.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class FairQueue(Generic[T]):
    """At most ``slots`` items run at once; the others wait, at most ``max_waiting`` in all and
    ``max_waiting_per_lane`` per lane (beyond that ``enter`` raises ``QueueFull``).

    Fair across lanes: when a slot frees, the next item comes from the lane with the fewest
    items running, ties going to the lane served longest ago; within a lane, first come first
    served. So one lane with 50 items waiting delays another lane's single item by at most the
    items already running, not by all 50.
    """

    def __init__(self, slots: int, max_waiting: int, max_waiting_per_lane: int) -> None:
        self.slots = max(1, slots)
        self.max_waiting = max(0, max_waiting)
        self.max_waiting_per_lane = max(0, max_waiting_per_lane)
        self._waiting: dict[Hashable, deque[Ticket[T]]] = {}
        self._running: dict[Hashable, list[Ticket[T]]] = {}
        self._served: dict[Hashable, int] = {}  # lane -> dispatch counter when last served
        self._dispatches = 0

    # ---- entering and leaving -----------------------------------------------------------------
    def enter(self, lane: Hashable, item: T) -> Ticket[T]:
        """A ticket for ``item`` in ``lane``: running at once when a slot is free, else waiting."""
        lane_waiting = len(self._waiting.get(lane, ()))
        if self.free_slots == 0 or self.waiting_count:
            if lane_waiting >= self.max_waiting_per_lane:
                raise QueueFull(self.max_waiting_per_lane, per_lane=True)
            if self.waiting_count >= self.max_waiting:
                raise QueueFull(self.max_waiting, per_lane=False)
        ticket: Ticket[T] = Ticket(self, lane, item)
        self._waiting.setdefault(lane, deque()).append(ticket)
        self._dispatch()
        return ticket

    def _leave(self, ticket: Ticket[T]) -> None:
        lane = ticket.lane
        if ticket.started_at is None:
            waiting = self._waiting.get(lane)
            if waiting is not None and ticket in waiting:
                waiting.remove(ticket)
                if not waiting:
                    del self._waiting[lane]
        else:
            running = self._running.get(lane, [])
            if ticket in running:
                running.remove(ticket)
                if not running:
                    del self._running[lane]
        self._dispatch()

    def _dispatch(self) -> None:
        while self.free_slots and self._waiting:
            lane = self._next_lane({k: len(v) for k, v in self._running.items()}, self._served, self._waiting)
            ticket = self._waiting[lane].popleft()
            if not self._waiting[lane]:
                del self._waiting[lane]
            self._dispatches += 1
            self._served[lane] = self._dispatches
            ticket.started_at = time.monotonic()
            self._running.setdefault(lane, []).append(ticket)
            if not ticket._granted.done():
                ticket._granted.set_result(None)
        if len(self._served) > 4 * (len(self._running) + len(self._waiting)) + 1000:  # forget idle lanes
            busy = self._running.keys() | self._waiting.keys()
            self._served = {k: v for k, v in self._served.items() if k in busy}

    @staticmethod
    def _next_lane(running: dict[Hashable, int], served: dict[Hashable, int], waiting: dict[Hashable, Any]) -> Hashable:
        return min(waiting, key=lambda lane: (running.get(lane, 0), served.get(lane, 0)))

    # ---- what users are shown -----------------------------------------------------------------
    @property
    def free_slots(self) -> int:
        return self.slots - sum(len(r) for r in self._running.values())

    @property
    def waiting_count(self) -> int:
        return sum(len(w) for w in self._waiting.values())

    def _start_order(self) -> Iterator[Ticket[T]]:
        """Waiting tickets in the order they would start if nothing running finished early."""
        running = {k: len(v) for k, v in self._running.items()}
        served = dict(self._served)
        waiting = {k: deque(v) for k, v in self._waiting.items()}
        counter = self._dispatches
        while waiting:
            lane = self._next_lane(running, served, waiting)
            yield waiting[lane].popleft()
            if not waiting[lane]:
                del waiting[lane]
            counter += 1
            running[lane] = running.get(lane, 0) + 1
            served[lane] = counter

    def ahead_of(self, ticket: Ticket[T]) -> int:
        if ticket.state != "waiting":
            return 0
        for position, other in enumerate(self._start_order()):
            if other is ticket:
                return position
        return 0

    def lane(self, lane: Hashable) -> list[Ticket[T]]:
        """The lane's running items (oldest first), then its waiting ones in the order they start."""
        return list(self._running.get(lane, [])) + [t for t in self._start_order() if t.lane == lane]
