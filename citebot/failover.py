"""Keep working when the Weaviate node this process talks to dies (a replicated cluster).

A weaviate-client connects to one node. With replication (CITEBOT_REPLICATION_FACTOR > 1) every
node holds a copy and coordinates any request, so a process only needs *a* live node:

* WEAVIATE_URL may list several nodes (``http://w0:8080,http://w1:8080,http://w2:8080``); the
  store connects to the first that answers (each bot replica can list them in another order to
  spread the load). Behind one load-balanced URL (a Kubernetes Service), "the next node" is a
  new connection to the same URL, which the Service routes to a live pod.
* A watchdog asks the current node ``/v1/.well-known/ready`` every second; when it stops
  answering, the store reconnects to the next node and closes the old client (which also cuts
  short the client's own minute-long retries against the dead node).
* Every ``Store`` call that fails for a reason a retry can fix (connection refused or closed,
  timeouts, 5xx while Raft elects a new leader, UNAVAILABLE) is retried, on the next node when
  the current one is down, for up to ``RETRY_BUDGET_S``; then it raises ``StoreFailed`` with a
  message the user can act on. Store writes are idempotent (deterministic ids, upserts), and a
  retried event claim keeps its claimant id, so it finds its own first attempt.

A single-node deployment (one URL, factor 1) uses the plain ``Store``: nothing to fail over to.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import weaviate

from citebot.errors import StoreFailed
from citebot.settings import Settings
from citebot.store import Store, WeaviateNode, connect, connect_node, weaviate_nodes

log = logging.getLogger(__name__)

RETRY_BUDGET_S = 30.0
WATCH_INTERVAL_S = 1.0
UNAVAILABLE = "The document index (Weaviate) is unavailable right now; please try again in a minute."


def open_store(settings: Settings) -> Store:
    """The store for these settings: failing over across nodes when replicated or given several."""
    if settings.weaviate_url and (settings.replication_factor > 1 or len(weaviate_nodes(settings)) > 1):
        return FailoverStore(settings)
    client = connect(settings)
    try:
        return Store(client, settings.collection_prefix, settings.replication_factor)
    except BaseException:
        client.close()
        raise


def close_store(store: Store) -> None:
    if isinstance(store, FailoverStore):
        store.close()
    else:
        store.client.close()


_TRANSIENT_TEXTS = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "closed channel", "connection is closing", "Connection refused")


def _transient(error: BaseException) -> bool:
    """Would the same call succeed later or on another node?"""
    e = weaviate.exceptions
    if isinstance(
        error,
        e.WeaviateConnectionError
        | e.WeaviateTimeoutError
        | e.WeaviateRetryError
        | e.WeaviateClosedClientError
        | e.WeaviateGRPCUnavailableError
        | e.WeaviateInsertManyAllFailedError
        | StoreFailed,
    ):
        return True
    if isinstance(error, e.UnexpectedStatusCodeError):
        return error.status_code >= 500
    text = str(error)
    return any(s in text for s in _TRANSIENT_TEXTS)


_inside = threading.local()


def _with_failover(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: FailoverStore, *args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "depth", 0):  # a Store method calling another: the outer call retries
            return method(self, *args, **kwargs)
        deadline = time.monotonic() + RETRY_BUDGET_S
        delay = 0.25
        while True:
            generation = self._generation
            _inside.depth = 1
            try:
                return method(self, *args, **kwargs)
            except Exception as error:
                moved = generation != self._generation  # the client was replaced under this call
                if not (moved or _transient(error)):
                    raise
                if time.monotonic() > deadline:
                    raise StoreFailed(UNAVAILABLE) from error
                log.warning("Weaviate %s failed (%s: %.200s); retrying", method.__name__, type(error).__name__, error)
                if not moved and not self.node_ready():
                    self.fail_over(generation)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                _inside.depth = 0

    return call


class FailoverStore(Store):
    """A ``Store`` that survives the death of its Weaviate node (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._nodes = weaviate_nodes(settings)
        self._node = 0
        self._generation = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        client = self._connect_from(0)
        try:
            super().__init__(client, settings.collection_prefix, settings.replication_factor)
        except BaseException:
            client.close()
            raise
        self._watchdog = threading.Thread(target=self._watch, name="weaviate-watchdog", daemon=True)
        self._watchdog.start()

    @property
    def node(self) -> WeaviateNode:
        return self._nodes[self._node]

    def _connect_from(self, start: int) -> weaviate.WeaviateClient:
        error: BaseException | None = None
        for attempt in range(len(self._nodes)):
            index = (start + attempt) % len(self._nodes)
            try:
                client = connect_node(self._settings, self._nodes[index])
            except Exception as failed:  # noqa: BLE001 - try the next node
                error = failed
                continue
            self._node = index
            return client
        raise StoreFailed(UNAVAILABLE) from error

    def node_ready(self, index: int | None = None) -> bool:
        node = self._nodes[self._node if index is None else index]
        try:
            with urllib.request.urlopen(f"{node.url}/v1/.well-known/ready", timeout=1.5) as response:
                return response.status == 200
        except OSError:
            return False

    def fail_over(self, generation: int) -> None:
        """Reconnect to the next node that answers (unless another thread already did)."""
        with self._lock:
            if generation != self._generation or self._stopped.is_set():
                return
            old = self.client
            try:
                client = self._connect_from(self._node + 1)
            except StoreFailed:
                log.warning("no Weaviate node answers; will try again")
                return
            Store.__init__(self, client, self._settings.collection_prefix, self._settings.replication_factor)
            self._generation += 1
            log.warning("Weaviate node unavailable; now using %s", self.node.url)
        threading.Thread(target=old.close, name="weaviate-close", daemon=True).start()

    def _watch(self) -> None:
        misses = 0
        while not self._stopped.wait(WATCH_INTERVAL_S):
            generation = self._generation
            misses = 0 if self.node_ready() else misses + 1
            if misses >= 2:
                self.fail_over(generation)
                misses = 0

    def claim(self, key: str, claimant: str = "") -> bool:
        return self._claim(key, claimant or uuid.uuid4().hex)  # the same claimant on every retry

    _claim = _with_failover(Store.claim)

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            self.client.close()


for _name, _member in list(vars(Store).items()):
    if inspect.isfunction(_member) and not _name.startswith("_") and _name not in vars(FailoverStore):
        setattr(FailoverStore, _name, _with_failover(_member))
