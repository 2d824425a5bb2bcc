"""Artifacts on disk: embedding tables, the compact delta store, streamed JSON.

One module per kind of file: ``files`` (atomic writes, JSON, the npz envelope), ``tables``
(the embedding table each embedding job writes), ``delta_store`` (the compact delta store,
version 2: written one variant at a time, read by row ranges) and ``seed_json`` (the seed's
record list, streamed). Every writer goes through :func:`atomic_path`, so a job killed
mid-write leaves no half-written file that a later run could trust.
"""

from delta_v2a.storage.delta_store import (
    DELTA_COLUMNS,
    FILE_COLUMNS,
    STORE_VERSION,
    DeltaStore,
    DeltaStoreWriter,
    StoreReader,
    open_store,
)
from delta_v2a.storage.files import (
    NAMES,
    StoreError,
    atomic_path,
    json_text,
    load_npz,
    read_json,
    read_tsv_rows,
    save_npz,
    write_if_changed,
    write_json,
)
from delta_v2a.storage.seed_json import SeedJsonWriter, write_deltas_json
from delta_v2a.storage.tables import TABLE_META, EmbeddingTable

__all__ = [
    "DELTA_COLUMNS",
    "FILE_COLUMNS",
    "NAMES",
    "STORE_VERSION",
    "TABLE_META",
    "DeltaStore",
    "DeltaStoreWriter",
    "EmbeddingTable",
    "SeedJsonWriter",
    "StoreError",
    "StoreReader",
    "atomic_path",
    "json_text",
    "load_npz",
    "open_store",
    "read_json",
    "read_tsv_rows",
    "save_npz",
    "write_deltas_json",
    "write_if_changed",
    "write_json",
]
