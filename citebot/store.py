"""Weaviate: the only store. Documents, chunks (with vectors and cached summaries), and the
small bookkeeping collections (model record, claimed events, feedback).

Visibility lives on the chunks: every chunk's ``scopes`` lists the "workspace/channel" keys its
document is visible in, so a search is one hybrid query with one ``scopes contains_any [scope]``
filter, however many documents a channel holds. The document keeps the same list (for listing
and forgetting). Chunks are written with no scope while their document is ``ingesting`` and get
its scopes in one batch pass when it becomes ``ready``; adding a document to another channel or
forgetting it there rewrites its chunks' scopes the same way (a batch upsert of unchanged
vectors, which Weaviate applies without touching the vector index). So a document half-way
through ingestion, or removed from a channel, is never found.
Chunks carry the document fields retrieval shows (title, link) so the hot path needs no
cross-reference.

The layout is versioned (``SCHEMA_VERSION`` in the meta collection): an index written before
chunks carried scopes is migrated once, when a ``Store`` opens it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import weaviate
from weaviate.classes.config import (
    Configure,
    ConsistencyLevel,
    DataType,
    Property,
    ReplicationDeletionStrategy,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery, Sort
from weaviate.collections import Collection

from citebot.domain import Chunk, Document, Passage, Scope
from citebot.errors import DocumentNotFound, EmbeddingModelMismatch, StoreFailed
from citebot.settings import WEAVIATE_CLOUD_DOMAINS, Settings
from citebot.weaviate_server import EmbeddedServer, acquire_embedded

log = logging.getLogger(__name__)

_NS = uuid.UUID("6f1c52b4-7d0e-4c59-9a43-0b7f1d1c2b7e")
STALE_INGEST_AFTER = timedelta(minutes=30)
# An event claim waits this long after writing before it lists the claims; a claim whose own
# write took longer waits up to CLAIM_WAIT_S for the other claimers' decisions (see Store.claim).
CLAIM_SETTLE_S = 0.15
CLAIM_WAIT_S = 5.0
# The keyword leg of hybrid search: a chunk's text, and its title/section context (weighted less).
SEARCHED_PROPERTIES = ["text", "context^0.5"]
# 1: visibility on documents only. 2: every chunk carries its document's scopes.
SCHEMA_VERSION = "2"
# Objects per read or batch write when walking many documents or chunks (well under Weaviate's
# QUERY_MAXIMUM_RESULTS of 10,000, which no query here may rely on).
PAGE = 1000


def object_id(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "\x1f".join(parts)))


@dataclass(frozen=True)
class WeaviateNode:
    url: str  # http(s)://host:port
    grpc_host: str
    grpc_port: int


def weaviate_nodes(settings: Settings) -> list[WeaviateNode]:
    """Every node WEAVIATE_URL lists (comma-separated). A node's gRPC endpoint is its URL's host on
    WEAVIATE_GRPC_PORT unless the URL says otherwise: ``?grpc_port=50052`` / ``?grpc_host=weaviate-grpc``."""
    nodes = []
    for part in settings.weaviate_url.split(","):
        url = urlparse(part.strip())
        if url.hostname:
            query = parse_qs(url.query)
            nodes.append(
                WeaviateNode(
                    url=url._replace(query="").geturl().rstrip("/"),
                    grpc_host=query.get("grpc_host", [url.hostname])[0],
                    grpc_port=int(query.get("grpc_port", [settings.weaviate_grpc_port])[0]),
                )
            )
    return nodes


class EmbeddedClient(weaviate.WeaviateClient):
    """A client of the embedded server this process registered with; closing it releases the
    registration (the server stops when no citebot process uses it any more)."""

    def __init__(self, server: EmbeddedServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server = server

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.server.release()


def connect(settings: Settings) -> weaviate.WeaviateClient:
    """Weaviate Embedded by default; a server (local, compose, cluster) or Weaviate Cloud by URL;
    with several nodes in WEAVIATE_URL, the first of them that accepts the connection."""
    if not settings.weaviate_url:
        server = acquire_embedded(
            Path(settings.data_dir) / "weaviate",
            settings.weaviate_binary_dir,
            settings.weaviate_embedded_port,
            settings.weaviate_embedded_grpc_port,
        )
        client: weaviate.WeaviateClient = EmbeddedClient(
            server,
            connection_params=weaviate.connect.ConnectionParams.from_params(
                http_host="127.0.0.1",
                http_port=server.http_port,
                http_secure=False,
                grpc_host="127.0.0.1",
                grpc_port=server.grpc_port,
                grpc_secure=False,
            ),
            additional_config=_client_config(settings),
        )
        try:
            client.connect()
        except BaseException:
            server.release()
            raise
        return client
    nodes = weaviate_nodes(settings)
    for node in nodes[:-1]:
        try:
            return connect_node(settings, node)
        except weaviate.exceptions.WeaviateBaseError:
            continue
    return connect_node(settings, nodes[-1])


def _client_config(settings: Settings) -> AdditionalConfig:
    # A replicated cluster: give up on a stuck request sooner (citebot.failover retries it elsewhere).
    replicated = settings.replication_factor > 1
    timeout = Timeout(init=10, query=30, insert=30) if replicated else Timeout(init=30, query=60, insert=120)
    return AdditionalConfig(timeout=timeout)


def connect_node(settings: Settings, node: WeaviateNode) -> weaviate.WeaviateClient:
    url = urlparse(node.url)
    auth = Auth.api_key(settings.weaviate_api_key) if settings.weaviate_api_key else None
    config = _client_config(settings)
    if (url.hostname or "").endswith(WEAVIATE_CLOUD_DOMAINS):
        return weaviate.connect_to_weaviate_cloud(node.url, auth, additional_config=config)
    secure = url.scheme == "https"
    client = weaviate.WeaviateClient(
        connection_params=weaviate.connect.ConnectionParams.from_params(
            http_host=url.hostname or "localhost",
            http_port=url.port or (443 if secure else 80),
            http_secure=secure,
            grpc_host=node.grpc_host,
            grpc_port=node.grpc_port,
            grpc_secure=secure,
        ),
        auth_client_secret=auth,
        additional_config=config,
    )
    client.connect()
    return client


def chunk_object_id(document_id: str, attempt: str, index: int) -> str:
    """Chunk ids are fresh for every ingest attempt: after a crash Weaviate can keep objects that
    its property index no longer finds, and rewriting the same ids would never re-index them."""
    return object_id("chunk", document_id, attempt, str(index))


def _scopes() -> Property:
    """The "workspace/channel" keys an object is visible in: filtered on, never searched."""
    return Property(name="scopes", data_type=DataType.TEXT_ARRAY, tokenization=Tokenization.FIELD, index_searchable=False)


def _vector(obj: Any) -> Any:
    return obj.vector.get("default") if isinstance(obj.vector, dict) else obj.vector


def _text(name: str, field: bool = False) -> Property:
    return Property(
        name=name,
        data_type=DataType.TEXT,
        tokenization=Tokenization.FIELD if field else Tokenization.WORD,
        index_searchable=not field,
    )


class Store:
    def __init__(self, client: weaviate.WeaviateClient, prefix: str = "Citebot", replication_factor: int = 1) -> None:
        self.client = client
        self.prefix = prefix
        # Replicated (factor > 1): every write and read waits for a majority of the copies, so a
        # read always sees the last acknowledged write even with one node down.
        self.replication_factor = replication_factor
        self.consistency = ConsistencyLevel.QUORUM if replication_factor > 1 else ConsistencyLevel.ONE
        self._ensure_schema()

        def collection(suffix: str) -> Collection:
            return client.collections.get(f"{prefix}{suffix}").with_consistency_level(self.consistency)

        self.documents: Collection = collection("Document")
        self.chunks: Collection = collection("Chunk")
        self.meta: Collection = collection("Meta")
        self.events: Collection = collection("Event")
        self.feedback: Collection = collection("Feedback")
        self.leases: Collection = collection("Lease")
        self._check_layout()

    # ---- schema -------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        existing = set(self.client.collections.list_all(simple=True))
        specs: dict[str, dict[str, Any]] = {
            "Document": dict(
                properties=[
                    _text("document_id", True),
                    _text("title"),
                    Property(name="authors", data_type=DataType.TEXT_ARRAY),
                    _text("source", True),
                    _text("arxiv_id", True),
                    _text("link", True),
                    _text("filename", True),
                    Property(name="pages", data_type=DataType.INT),
                    Property(name="chunks", data_type=DataType.INT),
                    _text("added_by", True),
                    _text("added_scope", True),
                    Property(name="added_at", data_type=DataType.DATE),
                    _scopes(),
                    _text("status", True),
                    Property(name="updated_at", data_type=DataType.DATE),
                    _text("attempt", True),
                ],
                vector_config=Configure.Vectors.self_provided(),
            ),
            "Chunk": dict(
                properties=[
                    _text("document_id", True),
                    _text("title"),
                    _text("link", True),
                    _text("text"),
                    _text("context"),
                    Property(name="page_start", data_type=DataType.INT),
                    Property(name="page_end", data_type=DataType.INT),
                    Property(name="chunk_index", data_type=DataType.INT),
                    Property(name="summary", data_type=DataType.TEXT, index_searchable=False),
                    _scopes(),
                ],
                vector_config=Configure.Vectors.self_provided(
                    vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
                ),
            ),
            "Meta": dict(
                properties=[_text("key", True), _text("value", True)], vector_config=Configure.Vectors.self_provided()
            ),
            "Event": dict(
                properties=[
                    _text("key", True),
                    Property(name="at", data_type=DataType.DATE),
                    _text("owner", True),
                    _text("state", True),
                ],
                vector_config=Configure.Vectors.self_provided(),
            ),
            "Lease": dict(
                properties=[
                    _text("key", True),
                    Property(name="generation", data_type=DataType.INT),
                    _text("owner", True),
                    Property(name="until", data_type=DataType.DATE),
                ],
                vector_config=Configure.Vectors.self_provided(),
            ),
            "Feedback": dict(
                properties=[
                    _text("answer_key", True),
                    _text("scope", True),
                    _text("user", True),
                    Property(name="helpful", data_type=DataType.BOOL),
                    _text("question"),
                    Property(name="at", data_type=DataType.DATE),
                ],
                vector_config=Configure.Vectors.self_provided(),
            ),
        }
        # Async replication repairs a node that missed writes (it was down) in the background;
        # a delete and a later re-add of the same object resolve by time, newest wins.
        replication = Configure.replication(
            factor=self.replication_factor,
            async_enabled=self.replication_factor > 1,
            deletion_strategy=ReplicationDeletionStrategy.TIME_BASED_RESOLUTION,
        )
        chunks = f"{self.prefix}Chunk"
        if chunks in existing:  # an index from before chunks had a context: add the property
            collection = self.client.collections.get(chunks)
            if "context" not in {p.name for p in collection.config.get().properties}:
                collection.config.add_property(_text("context"))
        for suffix, spec in specs.items():
            name = f"{self.prefix}{suffix}"
            if name not in existing:
                try:
                    self.client.collections.create(name, replication_config=replication, **spec)
                except weaviate.exceptions.UnexpectedStatusCodeError as error:
                    if "already exists" not in str(error):  # another process created it meanwhile
                        raise
        self._fresh_index = f"{self.prefix}Chunk" not in existing

    def _check_layout(self) -> None:
        """Record the layout of a new index; bring an index written by an older citebot up to date."""
        key = object_id("meta", "schema_version")
        found = self.meta.query.fetch_object_by_id(key)
        recorded = found.properties["value"] if found else ("" if not self._fresh_index else SCHEMA_VERSION)
        if recorded == SCHEMA_VERSION:
            if found is None:
                self._write_meta(key, "schema_version", SCHEMA_VERSION)
            return
        if recorded and recorded > SCHEMA_VERSION:
            raise StoreFailed(
                f"This index was written by a newer citebot (layout {recorded}; this one knows {SCHEMA_VERSION}). "
                "Upgrade citebot, or use a new CITEBOT_COLLECTION_PREFIX and re-ingest."
            )
        self.migrate_to_chunk_scopes()
        self._write_meta(key, "schema_version", SCHEMA_VERSION)

    def _write_meta(self, key: str, name: str, value: str) -> None:
        if self.meta.data.exists(key):
            self.meta.data.replace(uuid=key, properties={"key": name, "value": value})
        else:
            self.meta.data.insert({"key": name, "value": value}, uuid=key)

    def migrate_to_chunk_scopes(self) -> None:
        """Layout 1 → 2: add ``scopes`` to the chunks and copy each ready document's scopes onto its
        chunks (one pass over every chunk, written back in batches). Idempotent: a second process
        starting meanwhile does the same writes."""
        names = {p.name for p in self.chunks.config.get().properties}
        if "scopes" not in names:
            self.chunks.config.add_property(_scopes())
        ready = {
            o.properties["document_id"]: list(o.properties.get("scopes") or [])
            for o in self.documents.iterator(return_properties=["document_id", "scopes", "status"])
            if o.properties.get("status") == "ready"
        }
        log.warning("Migrating the index to per-chunk scopes (once): %d ready documents.", len(ready))
        page: list[DataObject] = []
        done = 0
        for obj in self.chunks.iterator(include_vector=True):
            scopes = ready.get(obj.properties.get("document_id") or "", [])
            page.append(DataObject(properties={**obj.properties, "scopes": scopes}, vector=_vector(obj), uuid=obj.uuid))
            if len(page) == PAGE:
                self._insert_chunks(page)
                done, page = done + len(page), []
        if page:
            self._insert_chunks(page)
            done += len(page)
        log.warning("Migrated %d chunks to per-chunk scopes.", done)

    # ---- the embedding model record ----------------------------------------------------
    def check_embedding_model(self, model_id: str) -> None:
        """Record the model on first use; refuse a different one later (vectors never mix)."""
        key = object_id("meta", "embedding_model")
        existing = self.meta.query.fetch_object_by_id(key)
        if existing is None:
            try:
                self.meta.data.insert({"key": "embedding_model", "value": model_id}, uuid=key)
                return
            except weaviate.exceptions.UnexpectedStatusCodeError as error:
                if error.status_code != 422 or "already exists" not in str(error):
                    raise
            existing = self.meta.query.fetch_object_by_id(key)  # a process starting at the same time wrote it
        recorded = existing.properties["value"]
        if recorded != model_id:
            from citebot.embeddings import model_mismatch_advice

            raise EmbeddingModelMismatch(model_mismatch_advice(recorded, model_id, self.prefix))

    # ---- documents ----------------------------------------------------------------------
    def get_document(self, document_id: str) -> Document | None:
        found = self.documents.query.fetch_object_by_id(object_id("doc", document_id))
        return _document(found.properties) if found else None

    def find_by_arxiv_id(self, arxiv_id: str) -> Document | None:
        result = self.documents.query.fetch_objects(
            filters=Filter.by_property("arxiv_id").equal(arxiv_id) & Filter.by_property("status").equal("ready"), limit=1
        )
        return _document(result.objects[0].properties) if result.objects else None

    def begin_document(self, document: Document, attempt: str) -> None:
        """Write the document as 'ingesting' (invisible) before any chunk is stored. ``chunks``
        is the planned count and ``attempt`` the ingest attempt: together they let a cleanup after
        a crash find every chunk by its id."""
        self.documents.data.insert(
            document_properties(document, attempt, "ingesting"), uuid=object_id("doc", document.document_id)
        )

    def store_chunks(self, chunks: list[Chunk], vectors: list[list[float]], document: Document, attempt: str) -> None:
        """Store one batch of chunks (one gRPC batch call), visible nowhere until
        ``finish_document``; any failure raises, and the caller removes the partial document.
        Chunks come in index order: the document's record first counts the chunks that may now
        exist, so that a cleanup after a crash finds every one by its id."""
        if not chunks:
            return
        self.documents.data.update(
            uuid=object_id("doc", document.document_id),
            properties={"chunks": chunks[-1].index + 1, "updated_at": datetime.now(UTC)},
        )
        objects = [
            DataObject(
                properties=chunk_properties(c, document, scopes=()),
                vector=vector,
                uuid=chunk_object_id(c.document_id, attempt, c.index),
            )
            for c, vector in zip(chunks, vectors, strict=True)
        ]
        self._insert_chunks(objects)

    def _insert_chunks(self, objects: list[DataObject]) -> None:
        """One batch write (new objects, or whole objects replaced under their ids)."""
        result = self.chunks.data.insert_many(objects)
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise StoreFailed(f"Weaviate refused {len(result.errors)} chunk(s): {first.message}")

    def _chunk_ids(self, document_id: str, attempt: str, count: int) -> list[str]:
        return [chunk_object_id(document_id, attempt, index) for index in range(count)]

    def _record(self, document_id: str) -> tuple[Document, str] | None:
        """A document and its ingest attempt (which, with its chunk count, gives its chunks' ids)."""
        found = self.documents.query.fetch_object_by_id(object_id("doc", document_id))
        return (_document(found.properties), found.properties.get("attempt") or "") if found else None

    def _set_chunk_scopes(self, ids: list[str], scopes: list[str]) -> None:
        """Make these chunks visible in exactly ``scopes``: read by id a page at a time (with
        vectors) and written back as one batch per page. The vectors are unchanged, so Weaviate
        keeps each chunk's place in the vector index and re-indexes only ``scopes``."""
        for start in range(0, len(ids), PAGE):
            page = ids[start : start + PAGE]
            result = self.chunks.query.fetch_objects(
                filters=Filter.by_id().contains_any(page), limit=len(page), include_vector=True
            )
            objects = [
                DataObject(properties={**o.properties, "scopes": scopes}, vector=_vector(o), uuid=o.uuid)
                for o in result.objects
            ]
            if objects:
                self._insert_chunks(objects)

    def finish_document(
        self, document_id: str, chunk_count: int, written: Sequence[tuple[Chunk, Sequence[float]]] | None = None
    ) -> None:
        """Check that every chunk reached Weaviate, give the chunks the document's scopes, then
        mark the document ready (from then on it is listed and searched). ``written``: the
        chunks and vectors just stored, which spares reading them back."""
        record = self._record(document_id)
        if record is None:
            raise StoreFailed("The document's record vanished while it was being indexed; please try again.")
        doc, attempt = record
        ids = self._chunk_ids(document_id, attempt, chunk_count)
        stored = 0
        for start in range(0, len(ids), PAGE):
            page = ids[start : start + PAGE]
            found = self.chunks.query.fetch_objects(
                filters=Filter.by_id().contains_any(page), limit=len(page), return_properties=[]
            )
            stored += len(found.objects)
        if stored != chunk_count:
            raise StoreFailed(f"Only {stored} of {chunk_count} chunks reached Weaviate.")
        if written is None or len(written) != chunk_count:
            self._set_chunk_scopes(ids, list(doc.scopes))
        else:
            for start in range(0, len(written), PAGE):
                self._insert_chunks(
                    [
                        DataObject(
                            properties=chunk_properties(chunk, doc, doc.scopes),
                            vector=list(vector),
                            uuid=chunk_object_id(document_id, attempt, chunk.index),
                        )
                        for chunk, vector in written[start : start + PAGE]
                    ]
                )
        self.documents.data.update(
            uuid=object_id("doc", document_id),
            properties={"status": "ready", "chunks": chunk_count, "updated_at": datetime.now(UTC)},
        )

    def remove_document(self, document_id: str) -> None:
        """Delete a document and all its chunks (used by forget and by failed ingests).

        Chunks are deleted by id as well as by ``document_id``. An ingest that never finished (a
        crash) is cleaned up object by object: Weaviate can then hold chunks that its indexes
        (``document_id``'s and even the id filter's) do not find."""
        record = self._record(document_id)
        if record is not None:
            doc, attempt = record
            ids = self._chunk_ids(document_id, attempt, doc.chunks)
            if doc.status != "ready":
                for chunk_id in ids:
                    self.chunks.data.delete_by_id(chunk_id)
            else:
                for start in range(0, len(ids), PAGE):
                    self.chunks.data.delete_many(where=Filter.by_id().contains_any(ids[start : start + PAGE]))
        self.chunks.data.delete_many(where=Filter.by_property("document_id").equal(document_id))
        self.documents.data.delete_by_id(object_id("doc", document_id))

    def add_scope(self, document_id: str, scope: Scope) -> bool:
        """Make a ready document visible in one more scope (its chunks first, then its record).
        True if it was not visible there."""
        record = self._record(document_id)
        if record is None:
            raise DocumentNotFound("That document is no longer indexed.")
        doc, attempt = record
        if scope.key in doc.scopes:
            return False
        scopes = [*doc.scopes, scope.key]
        self._set_chunk_scopes(self._chunk_ids(document_id, attempt, doc.chunks), scopes)
        self.documents.data.update(uuid=object_id("doc", document_id), properties={"scopes": scopes})
        return True

    def remove_scope(self, document_id: str, scope: Scope) -> bool:
        """Hide a document from one scope; delete its data when no scope refers to it. True if deleted."""
        record = self._record(document_id)
        if record is None:
            return True
        doc, attempt = record
        if scope.key not in doc.scopes:
            return False
        scopes = [s for s in doc.scopes if s != scope.key]
        if scopes:
            self._set_chunk_scopes(self._chunk_ids(document_id, attempt, doc.chunks), scopes)
            self.documents.data.update(uuid=object_id("doc", document_id), properties={"scopes": scopes})
            return False
        self.remove_document(document_id)
        return True

    def stale_ingests(self, older_than: timedelta = STALE_INGEST_AFTER) -> list[str]:
        cutoff = datetime.now(UTC) - older_than
        stale = Filter.by_property("status").equal("ingesting") & Filter.by_property("updated_at").less_than(cutoff)
        found: list[str] = []
        while True:
            after = Filter.by_property("document_id").greater_than(found[-1]) if found else None
            result = self.documents.query.fetch_objects(
                filters=stale & after if after else stale,
                limit=PAGE,
                sort=Sort.by_property("document_id"),
                return_properties=["document_id"],
            )
            found += [o.properties["document_id"] for o in result.objects]
            if len(result.objects) < PAGE:
                return found

    def _visible(self, scope: Scope) -> Filter:
        return Filter.by_property("scopes").contains_any([scope.key]) & Filter.by_property("status").equal("ready")

    def count_documents(self, scope: Scope) -> int:
        """How many ready documents ``scope`` can see (one aggregate query)."""
        return int(self.documents.aggregate.over_all(filters=self._visible(scope), total_count=True).total_count or 0)

    def visible_documents(self, scope: Scope) -> list[Document]:
        """Every ready document visible in ``scope``, newest first (all of them: read a page at a time)."""
        return list(self.iter_visible_documents(scope))

    def iter_visible_documents(self, scope: Scope) -> Iterator[Document]:
        """Newest first, a page at a time. Weaviate answers no query past 10,000 results (offset
        included) and its cursor takes no filter, so each page continues after the last one's
        (added_at, document_id)."""
        newest_first = Sort.by_property("added_at", ascending=False).by_property("document_id")
        last: dict[str, Any] | None = None
        while True:
            filters = self._visible(scope)
            if last is not None:
                filters = filters & (
                    Filter.by_property("added_at").less_than(last["added_at"])
                    | (
                        Filter.by_property("added_at").equal(last["added_at"])
                        & Filter.by_property("document_id").greater_than(last["document_id"])
                    )
                )
            result = self.documents.query.fetch_objects(filters=filters, limit=PAGE, sort=newest_first)
            for obj in result.objects:
                yield _document(obj.properties)
            if len(result.objects) < PAGE:
                return
            last = result.objects[-1].properties

    # ---- retrieval ----------------------------------------------------------------------
    def search(
        self,
        text: str,
        vector: list[float],
        scope: Scope,
        limit: int,
        alpha: float,
        document_id: str | None = None,
        first_chunks: bool = False,
    ) -> list[Passage]:
        """Hybrid search (BM25 + vector, relative-score fusion) over the chunks visible in ``scope``
        (only one document's with ``document_id``; only each document's first chunk, its title,
        byline and abstract, with ``first_chunks``)."""
        filters = Filter.by_property("scopes").contains_any([scope.key])
        if document_id is not None:
            filters = filters & Filter.by_property("document_id").equal(document_id)
        if first_chunks:
            filters = filters & Filter.by_property("chunk_index").equal(0)
        result = self.chunks.query.hybrid(
            query=text,
            vector=vector,
            alpha=alpha,
            limit=limit,
            fusion_type=HybridFusion.RELATIVE_SCORE,
            query_properties=SEARCHED_PROPERTIES,
            filters=filters,
            return_metadata=MetadataQuery(score=True),
            include_vector=True,
        )
        passages = []
        for obj in result.objects:
            p = obj.properties
            chunk = Chunk(
                document_id=p["document_id"],
                index=int(p.get("chunk_index") or 0),
                text=p["text"],
                page_start=int(p["page_start"]),
                page_end=int(p["page_end"]),
                context=p.get("context") or "",
            )
            passages.append(
                Passage(
                    chunk=chunk,
                    chunk_id=str(obj.uuid),
                    title=p.get("title") or "",
                    link=p.get("link") or "",
                    score=float(obj.metadata.score or 0.0),
                    vector=tuple(_vector(obj) or ()),
                    summary=p.get("summary") or "",
                )
            )
        return passages

    def save_summary(self, chunk_id: str, summary: str) -> None:
        self.chunks.data.update(uuid=chunk_id, properties={"summary": summary})

    # ---- events and feedback ------------------------------------------------------------
    def claim(self, key: str, claimant: str = "") -> bool:
        """True for exactly one claimer of ``key`` across processes, replicas and retries.

        Weaviate has no "insert if absent": its insert checks, then writes, so two processes
        claiming at the same moment (a mention's two events on two bot replicas, a retry racing
        the original) could both pass the check, and two writes to one object id can end up in a
        different order on different replicas. So every claimer writes its *own* claim (id from
        key and claimant; nothing is overwritten), waits until concurrent claims have landed, and
        lists the claims of ``key``:

        * none but its own: it wins; a later claimer (Slack's retry seconds later) sees it and loses;
        * others too: the earliest claim (then the smallest claimant id) wins, the same answer for
          everyone who sees the same claims;
        * but a claimer whose own write was slow (a node had just died) may have landed after
          another decided without seeing it, so it first waits (up to ``CLAIM_WAIT_S``) for the
          others' decisions, recorded on their claims, and loses to a winner.

        At least one claimer always wins (never silent); ``claimant`` (fresh for every call by
        default) lets a retry of the same call, whose first reply was lost, find its own claim."""
        claimant = claimant or uuid.uuid4().hex
        mine = object_id("event", key, claimant)
        claims = self._claims(key)
        if any(owner != claimant for _, owner, _ in claims):
            return False
        began = time.monotonic()
        if not claims:
            written = self.events.data.insert_many(
                [DataObject(properties={"key": key, "at": datetime.now(UTC), "owner": claimant}, uuid=mine)]
            )
            if written.has_errors:
                raise StoreFailed(f"An event claim was not stored: {next(iter(written.errors.values())).message}")
        slow = bool(claims) or time.monotonic() - began > CLAIM_SETTLE_S  # (claims: this call's earlier attempt)
        time.sleep(CLAIM_SETTLE_S)
        own = self.events.query.fetch_object_by_id(mine)  # read-your-write at QUORUM
        if own is None:
            raise StoreFailed("An event claim was not stored.")
        if own.properties.get("state") in ("won", "lost"):  # a retry of a call that had decided
            return own.properties["state"] == "won"
        deadline = time.monotonic() + CLAIM_WAIT_S
        while True:
            claims = [c for c in self._claims(key) if c[1] != claimant] + [(own.properties["at"], claimant, "")]
            others = [c for c in claims if c[1] != claimant]
            if not others:
                won = True
            elif any(state == "won" for _, _, state in others):
                won = False
            elif slow and time.monotonic() < deadline and not all(state == "lost" for _, _, state in others):
                time.sleep(0.2)
                continue
            else:
                won = min(claims)[1] == claimant
            break
        self.events.data.update(uuid=mine, properties={"state": "won" if won else "lost"})
        return won

    def _claims(self, key: str) -> list[tuple[datetime, str, str]]:
        """(time, claimant, decision) of every claim of ``key`` (a claim written before claimants
        were recorded counts as the earliest)."""
        found = self.events.query.fetch_objects(filters=Filter.by_property("key").equal(key), limit=100)
        earliest = datetime.min.replace(tzinfo=UTC)
        return [
            (o.properties.get("at") or earliest, o.properties.get("owner") or "", o.properties.get("state") or "")
            for o in found.objects
        ]

    def record_feedback(self, answer_key: str, scope: Scope, user: str, helpful: bool, question: str) -> None:
        uid = object_id("feedback", answer_key, user)
        properties = {
            "answer_key": answer_key,
            "scope": scope.key,
            "user": user,
            "helpful": helpful,
            "question": question,
            "at": datetime.now(UTC),
        }
        if self.feedback.data.exists(uid):
            self.feedback.data.replace(uuid=uid, properties=properties)
        else:
            self.feedback.data.insert(properties, uuid=uid)

    def feedback_rows(self) -> list[dict[str, Any]]:
        return [dict(o.properties) for o in self.feedback.iterator()]

    # ---- who added a document to a scope (who may forget it there) ---------------------------
    def record_adder(self, document_id: str, scope: Scope, user: str) -> None:
        uid = object_id("adder", document_id, scope.key)
        properties = {"key": f"adder:{document_id}:{scope.key}", "value": user}
        self.meta.data.insert_many([DataObject(properties=properties, uuid=uid)])  # a batch write is an upsert

    def adder(self, document_id: str, scope: Scope) -> str | None:
        found = self.meta.query.fetch_object_by_id(object_id("adder", document_id, scope.key))
        return found.properties["value"] if found else None

    def forget_adder(self, document_id: str, scope: Scope) -> None:
        self.meta.data.delete_by_id(object_id("adder", document_id, scope.key))

    # ---- leases: claims that hold across processes and expire when their holder dies ----------
    def acquire_lease(
        self, key: str, owner: str, ttl: timedelta, abandoned: Callable[[str], bool] = lambda owner: False
    ) -> Lease | None:
        """Hold ``key`` for ``ttl`` (renew it to keep it), or None while someone else holds it.

        Each holder writes a new generation (``object_id("lease", key, n)``): the insert of a given
        generation succeeds for one process only (Weaviate refuses an existing id with 422), so
        of two processes taking over the same expired lease one wins; the winner then reads the
        lease back (after ``CLAIM_SETTLE_S``, as ``claim`` does) and holds it only if it is its own. ``abandoned(owner)``
        says an unexpired lease is known dead (its holder was in this process and is gone)."""
        current = self._latest_lease(key)
        if current is not None:
            held_by, until = current.properties.get("owner") or "", current.properties.get("until")
            if held_by and isinstance(until, datetime) and until > datetime.now(UTC) and not abandoned(held_by):
                return None
        generation = int(current.properties["generation"]) + 1 if current is not None else 0
        properties = {"key": key, "generation": generation, "owner": owner, "until": datetime.now(UTC) + ttl}
        try:
            self.leases.data.insert(properties, uuid=object_id("lease", key, str(generation)))
        except weaviate.exceptions.UnexpectedStatusCodeError as error:
            if error.status_code == 422 and "already exists" in str(error):
                return None
            raise
        time.sleep(CLAIM_SETTLE_S)  # a concurrent insert of the same generation (a cluster) lands meanwhile
        latest = self._latest_lease(key)
        if latest is None or int(latest.properties["generation"]) != generation or latest.properties["owner"] != owner:
            return None  # another holder of this or a later generation (we read a stale "latest")
        return Lease(key, owner, generation)

    def renew_lease(self, lease: Lease, ttl: timedelta) -> bool:
        """Extend a lease; False if it was lost (it expired and another process took it over)."""
        latest = self._latest_lease(lease.key)
        if latest is None or int(latest.properties["generation"]) != lease.generation:
            return False
        if latest.properties.get("owner") != lease.owner:
            return False
        self.leases.data.update(uuid=latest.uuid, properties={"until": datetime.now(UTC) + ttl})
        return True

    def release_lease(self, lease: Lease) -> None:
        """Give a lease up. Its object stays, expired, so generations only grow; older ones go."""
        latest = self._latest_lease(lease.key)
        if latest is not None and int(latest.properties["generation"]) == lease.generation:
            self.leases.data.update(uuid=latest.uuid, properties={"owner": "", "until": datetime.now(UTC)})
            older = Filter.by_property("generation").less_than(lease.generation)
            self.leases.data.delete_many(where=Filter.by_property("key").equal(lease.key) & older)

    def _latest_lease(self, key: str) -> Any:
        result = self.leases.query.fetch_objects(
            filters=Filter.by_property("key").equal(key), sort=Sort.by_property("generation", ascending=False), limit=1
        )
        return result.objects[0] if result.objects else None


@dataclass(frozen=True)
class Lease:
    key: str
    owner: str
    generation: int


def document_properties(document: Document, attempt: str, status: str) -> dict[str, Any]:
    """A document as stored (``scopes`` lists where it is visible once ``status`` is "ready")."""
    now = datetime.now(UTC)
    return {
        "document_id": document.document_id,
        "title": document.title,
        "authors": list(document.authors),
        "source": document.source,
        "arxiv_id": document.arxiv_id,
        "link": document.link,
        "filename": document.filename,
        "pages": document.pages,
        "chunks": document.chunks,
        "added_by": document.added_by,
        "added_scope": document.scopes[0] if document.scopes else "",
        "scopes": list(document.scopes),
        "status": status,
        "attempt": attempt,
        "updated_at": now,
        "added_at": now,
    }


def chunk_properties(chunk: Chunk, document: Document, scopes: Sequence[str]) -> dict[str, Any]:
    """A chunk as stored: with its document's title and link, visible in ``scopes``."""
    return {
        "document_id": chunk.document_id,
        "title": document.title,
        "link": document.link,
        "text": chunk.text,
        "context": chunk.context,
        "page_start": chunk.page_start,
        "page_end": chunk.page_end,
        "chunk_index": chunk.index,
        "summary": "",
        "scopes": list(scopes),
    }


def _document(p: dict[str, Any]) -> Document:
    """A stored document object's properties as a ``Document``."""
    added_at = p.get("added_at")
    return Document(
        document_id=p["document_id"],
        title=p.get("title") or "",
        authors=tuple(p.get("authors") or ()),
        source=p.get("source") or "file",
        pages=int(p.get("pages") or 0),
        chunks=int(p.get("chunks") or 0),
        added_by=p.get("added_by") or "",
        added_at=added_at.isoformat(timespec="seconds") if isinstance(added_at, datetime) else str(added_at or ""),
        link=p.get("link") or "",
        arxiv_id=p.get("arxiv_id") or "",
        filename=p.get("filename") or "",
        scopes=tuple(p.get("scopes") or ()),
        status=p.get("status") or "ready",
    )
