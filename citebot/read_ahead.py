"""An iterator drained by a background thread: the producer (reading a PDF in parse workers and
chunking it) runs ahead of the consumer (embedding and storing), so parsing hides behind embedding
and a document that breaks a limit is refused as soon as the producer finds out."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class ReadAhead(Generic[T]):
    """The items of ``items``, produced by a daemon thread as fast as it can (every item is kept
    until taken). The producer's error is raised by the next ``take`` at once, before items still
    waiting. ``close()`` stops the producer (``on_close`` is called to interrupt a producer that
    is waiting for its source); the thread ends by itself."""

    def __init__(self, items: Iterable[T], name: str, on_close: Callable[[], None] | None = None) -> None:
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._ended = False
        self.waited = 0.0  # seconds ``take`` waited for the producer
        self._closed = threading.Event()
        self._on_close = on_close
        self._thread = threading.Thread(target=self._produce, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _produce(self, items: Iterable[T]) -> None:
        try:
            for item in items:
                if self._closed.is_set():
                    break
                self._items.put(item)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            self._error = error
        finally:
            self._items.put(_END)

    def take(self, most: int) -> list[T]:
        """The next items: waits for one, then adds those already produced, up to ``most``.
        [] once every item was taken; raises the producer's error."""
        out: list[T] = []
        while len(out) < most and not self._ended:
            if self._error is not None:
                raise self._error
            began = time.perf_counter()
            try:
                item = self._items.get(block=not out)
            except queue.Empty:
                break
            finally:
                self.waited += time.perf_counter() - began
            if item is _END:
                self._ended = True
                if self._error is not None:
                    raise self._error
            else:
                out.append(item)
        return out

    def __iter__(self) -> Iterator[T]:
        while batch := self.take(1):
            yield batch[0]

    def close(self) -> None:
        """Stop producing (idempotent; does not wait for the thread)."""
        if not self._closed.is_set():
            self._closed.set()
            if self._on_close is not None:
                self._on_close()
