"""The fair, bounded ingest queue and the separate thread pools (citebot/capacity.py), on their own.

The whole story through the bot is tests/bot/test_bot_busy.py; here the order and the limits are
checked exactly, without servers.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from citebot.capacity import FairQueue, Pool, QueueFull


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_a_busy_lane_does_not_delay_another_lanes_single_item() -> None:
    async def scenario() -> list[str]:
        queue: FairQueue[str] = FairQueue(slots=2, max_waiting=100, max_waiting_per_lane=60)
        started: list[str] = []
        flood = [queue.enter("busy", f"busy-{i}") for i in range(50)]
        assert [t.state for t in flood[:3]] == ["running", "running", "waiting"]
        assert flood[2].ahead == 0 and flood[49].ahead == 47
        single = queue.enter("quiet", "quiet-0")
        assert single.ahead == 0  # ahead of the 48 busy items still waiting
        assert flood[2].ahead == 1
        assert [t.item for t in queue.lane("quiet")] == ["quiet-0"]

        async def work(ticket) -> None:  # noqa: ANN001
            async with ticket:
                started.append(ticket.item)
                await asyncio.sleep(0)

        await asyncio.gather(*(work(t) for t in [*flood, single]))
        return started

    started = run(scenario())
    assert started.index("quiet-0") <= 2  # after the two already running, never after all 50
    assert [s for s in started if s.startswith("busy")] == [f"busy-{i}" for i in range(50)]  # FIFO within a lane


def test_lanes_take_turns() -> None:
    async def scenario() -> list[str]:
        queue: FairQueue[str] = FairQueue(slots=1, max_waiting=100, max_waiting_per_lane=10)
        tickets = [queue.enter(lane, f"{lane}{i}") for lane in "ab" for i in range(3)]
        order = []
        for _ in tickets:
            running = next(t for t in tickets if t.state == "running")
            order.append(running.item)
            running.release()
        return order

    assert run(scenario()) == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_full_queue_refuses_and_a_cancelled_waiter_leaves() -> None:
    async def scenario() -> None:
        queue: FairQueue[int] = FairQueue(slots=1, max_waiting=3, max_waiting_per_lane=2)
        running = queue.enter("a", 0)
        queue.enter("a", 1)
        queue.enter("a", 2)
        with pytest.raises(QueueFull) as lane_full:
            queue.enter("a", 3)
        assert lane_full.value.per_lane and lane_full.value.limit == 2
        waiter = queue.enter("b", 10)
        with pytest.raises(QueueFull) as full:
            queue.enter("c", 20)
        assert not full.value.per_lane and full.value.limit == 3
        task = asyncio.create_task(waiter.wait())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert waiter.state == "done" and queue.waiting_count == 2
        queue.enter("c", 20)  # room again
        running.release()
        assert queue.free_slots == 0 and [t.item for t in queue.lane("a")] == [1, 2]

    run(scenario())


def test_pools_do_not_share_threads() -> None:
    async def scenario() -> str:
        slow, fast = Pool("slow", 1), Pool("fast", 1)
        gate = threading.Event()
        try:
            blocked = asyncio.ensure_future(slow.run(gate.wait, 10))
            answer = await asyncio.wait_for(fast.run(lambda: threading.current_thread().name), timeout=5)
            gate.set()
            await blocked
            return answer
        finally:
            slow.close()
            fast.close()

    assert run(scenario()).startswith("citebot-fast")
