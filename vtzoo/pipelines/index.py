"""The vector index: ``VectorIndex(uri)`` opens the backend a URI names, behind one interface.

* a path ending in ``.db``: Milvus Lite (a local file);
* ``http(s)://host:port``: a Milvus server or cluster;
* any other path: the embedded store (a folder: rows in SQLite, HNSW search through FAISS), the
  default, chosen by measurement (docs/pipelines.md).

The interface and what every backend shares are in :mod:`vtzoo.pipelines.index_base`; importing
this module registers the built-in backends.
"""

from vtzoo.pipelines.embedded_index import EmbeddedIndex
from vtzoo.pipelines.index_base import (  # noqa: F401  (the public names of the index)
    DEFAULT_DB,
    ROW_FIELDS,
    IndexUnavailable,
    VectorIndex,
    VectorIndexError,
    backend_class,
    check_local_target,
    collection_name,
    is_local_uri,
    is_milvus_lite,
    is_server_uri,
)
from vtzoo.pipelines.milvus_index import MilvusIndex

__all__ = ["DEFAULT_DB", "EmbeddedIndex", "MilvusIndex", "VectorIndex", "VectorIndexError", "collection_name"]
