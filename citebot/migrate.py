"""Copy citebot's index from one Weaviate into another — typically a single node into a replicated
cluster — without re-parsing or re-embedding anything.

    WEAVIATE_URL=http://w0:8080,http://w1:8080,http://w2:8080 CITEBOT_REPLICATION_FACTOR=3 \\
        python -m citebot.migrate http://old-host:8080 [SOURCE_PREFIX]

The target is what the environment configures (WEAVIATE_URL, CITEBOT_REPLICATION_FACTOR,
CITEBOT_COLLECTION_PREFIX); citebot creates its collections there with the target's replication
factor (a collection's factor cannot be changed after it is created, so a backup of a single
node restores with factor 1). Every object keeps its id, properties and vectors: documents,
chunks, the embedding-model record, claimed events and feedback. Copying is an upsert, so a
second run after an interruption finishes the job and duplicates nothing. Stop the old bot first,
so nothing is written to the source meanwhile.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace

import weaviate
from weaviate.classes.data import DataObject
from weaviate.collections import Collection

from citebot.errors import StoreFailed
from citebot.failover import close_store, open_store
from citebot.settings import Settings
from citebot.store import SCHEMA_VERSION, connect, object_id

# Collection suffix -> the Store attribute holding it (the model record first, chunks before documents).
COLLECTIONS = {"Meta": "meta", "Chunk": "chunks", "Document": "documents", "Event": "events", "Feedback": "feedback"}


def migrate(
    source: Settings, target: Settings, batch_size: int = 200, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every citebot collection of ``source`` into ``target``; objects copied per collection."""
    client = connect(source)
    store = open_store(target)
    copied: dict[str, int] = {}
    try:
        for suffix, attribute in COLLECTIONS.items():
            name = f"{source.collection_prefix}{suffix}"
            if not client.collections.exists(name):
                continue
            destination: Collection = getattr(store, attribute)
            batch: list[DataObject] = []
            copied[suffix] = 0
            for obj in client.collections.get(name).iterator(include_vector=True):
                batch.append(DataObject(properties=dict(obj.properties), vector=obj.vector or None, uuid=obj.uuid))
                if len(batch) >= batch_size:
                    copied[suffix] += _insert(destination, batch)
                    batch = []
                    if progress:
                        progress(suffix, copied[suffix])
            copied[suffix] += _insert(destination, batch)
            if progress:
                progress(suffix, copied[suffix])
        if not _current_layout(client, source.collection_prefix):
            store.migrate_to_chunk_scopes()  # chunks copied from before they carried their scopes
    finally:
        client.close()
        close_store(store)
    return copied


def _current_layout(client: weaviate.WeaviateClient, prefix: str) -> bool:
    """Whether the source index has this citebot's layout (``SCHEMA_VERSION``)."""
    meta = f"{prefix}Meta"
    if not client.collections.exists(meta):
        return False
    found = client.collections.get(meta).query.fetch_object_by_id(object_id("meta", "schema_version"))
    return found is not None and found.properties.get("value") == SCHEMA_VERSION


def _insert(destination: Collection, batch: list[DataObject]) -> int:
    if not batch:
        return 0
    result = destination.data.insert_many(batch)
    if result.has_errors:
        first = next(iter(result.errors.values()))
        raise StoreFailed(f"{destination.name}: the target refused {len(result.errors)} object(s): {first.message}")
    return len(batch)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    target = Settings.from_env()
    prefix = sys.argv[2] if len(sys.argv) > 2 else target.collection_prefix
    source = replace(target, weaviate_url=sys.argv[1], collection_prefix=prefix, replication_factor=1)
    copied = migrate(source, target, progress=lambda what, n: print(f"\r{what}: {n}", end="", file=sys.stderr))
    print(file=sys.stderr)
    for suffix, count in copied.items():
        print(f"{prefix}{suffix} -> {target.collection_prefix}{suffix}: {count} objects")


if __name__ == "__main__":
    main()
