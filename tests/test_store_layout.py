"""An index written before chunks carried their scopes (layout 1) is migrated when citebot opens
it; an index from a newer citebot is refused with a clear message."""

from __future__ import annotations

import pytest
import weaviate as weaviate_client
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.data import DataObject

from citebot.domain import Scope
from citebot.errors import StoreFailed
from citebot.store import Store, chunk_object_id, object_id
from tests.standins.openai_server import embed

OLD_CHUNK_PROPERTIES = [
    ("document_id", DataType.TEXT),
    ("title", DataType.TEXT),
    ("link", DataType.TEXT),
    ("text", DataType.TEXT),
    ("page_start", DataType.INT),
    ("page_end", DataType.INT),
    ("chunk_index", DataType.INT),
    ("summary", DataType.TEXT),
]
OLD_DOCUMENT_PROPERTIES = [("document_id", DataType.TEXT), ("title", DataType.TEXT), ("status", DataType.TEXT)]
TEXTS = {
    "ready-doc": ["The lighthouse keeper logged forty storms in the winter of 1911.", "Fog horns sounded every minute."],
    "half-doc": ["The lighthouse keeper's diary was still being copied when the power failed."],
}


@pytest.fixture
def client(weaviate):
    with weaviate_client.connect_to_local(host="127.0.0.1", port=weaviate.http_port, grpc_port=weaviate.grpc_port) as c:
        yield c


def _old_index(client: weaviate_client.WeaviateClient, prefix: str) -> None:
    """Collections as citebot wrote them before chunks carried scopes: one ready document in
    T/C1 and T/C2, one whose ingest never finished."""
    field = {"tokenization": Tokenization.FIELD}
    client.collections.create(
        f"{prefix}Document",
        properties=[Property(name=n, data_type=t, **field) for n, t in OLD_DOCUMENT_PROPERTIES]
        + [
            Property(name="scopes", data_type=DataType.TEXT_ARRAY, tokenization=Tokenization.FIELD),
            Property(name="chunks", data_type=DataType.INT),
            Property(name="attempt", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
        ],
        vector_config=Configure.Vectors.self_provided(),
    )
    client.collections.create(
        f"{prefix}Chunk",
        properties=[Property(name=n, data_type=t) for n, t in OLD_CHUNK_PROPERTIES],
        vector_config=Configure.Vectors.self_provided(),
    )
    documents, chunks = client.collections.get(f"{prefix}Document"), client.collections.get(f"{prefix}Chunk")
    for doc_id, texts in TEXTS.items():
        ready = doc_id == "ready-doc"
        documents.data.insert(
            {
                "document_id": doc_id,
                "title": doc_id.title(),
                "status": "ready" if ready else "ingesting",
                "scopes": ["T/C1", "T/C2"] if ready else ["T/C1"],
                "chunks": len(texts),
                "attempt": "a1",
            },
            uuid=object_id("doc", doc_id),
        )
        chunks.data.insert_many(
            [
                DataObject(
                    properties={
                        "document_id": doc_id,
                        "title": doc_id.title(),
                        "text": t,
                        "page_start": 1,
                        "page_end": 1,
                        "chunk_index": i,
                        "summary": "",
                        "link": "",
                    },
                    vector=embed(t),
                    uuid=chunk_object_id(doc_id, "a1", i),
                )
                for i, t in enumerate(texts)
            ]
        )


def _found(store: Store, scope: Scope) -> set[str]:
    query = "lighthouse keeper storms diary"
    return {p.chunk.document_id for p in store.search(query, embed(query), scope, limit=10, alpha=0.5)}


def test_an_index_without_chunk_scopes_is_migrated_on_open(client) -> None:
    _old_index(client, "LayoutOld")
    store = Store(client, "LayoutOld")
    assert _found(store, Scope("T", "C1")) == {"ready-doc"}  # the unfinished ingest stays invisible
    assert _found(store, Scope("T", "C2")) == {"ready-doc"}
    assert _found(store, Scope("T", "C3")) == set()
    store.remove_scope("ready-doc", Scope("T", "C1"))
    assert _found(store, Scope("T", "C1")) == set() and _found(store, Scope("T", "C2")) == {"ready-doc"}
    assert (
        Store(client, "LayoutOld").meta.query.fetch_object_by_id(object_id("meta", "schema_version")).properties["value"]
        == "2"
    )


def test_an_index_from_a_newer_citebot_is_refused(client) -> None:
    store = Store(client, "LayoutNew")
    store.meta.data.replace(uuid=object_id("meta", "schema_version"), properties={"key": "schema_version", "value": "3"})
    with pytest.raises(StoreFailed, match="newer citebot"):
        Store(client, "LayoutNew")


def test_an_old_index_copied_by_citebot_migrate_is_brought_up_to_date(client, base_settings) -> None:
    from dataclasses import replace

    from citebot.migrate import migrate

    _old_index(client, "LayoutSrc")
    copied = migrate(
        replace(base_settings, collection_prefix="LayoutSrc"), replace(base_settings, collection_prefix="LayoutDst")
    )
    assert copied["Chunk"] == 3
    store = Store(client, "LayoutDst")
    assert _found(store, Scope("T", "C1")) == {"ready-doc"} and _found(store, Scope("T", "C3")) == set()
