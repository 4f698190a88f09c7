"""The state stores behind the `StateStore` port (engine/ports.py): memory and SQLite.

`open_store("memory")` is for tests, the demo and small deployments that restore from the
changelog on every assignment; `open_store("sqlite:PATH")` keeps the cases on disk so a restart
or a reassignment of the same partition only reads the changelog tail.
"""

from __future__ import annotations

from engine.ports import StateStore
from engine.problems import StoreClosedError
from engine.stores.codec import MAX_OFFSET, decode_case, encode_case
from engine.stores.memory import MemoryStore
from engine.stores.sqlite import SQLITE_PAGE_SIZE, SQLITE_SCHEMA_VERSION, SqliteStore

__all__ = [
    "MAX_OFFSET",
    "SQLITE_PAGE_SIZE",
    "SQLITE_SCHEMA_VERSION",
    "MemoryStore",
    "SqliteStore",
    "StateStore",
    "StoreClosedError",
    "decode_case",
    "encode_case",
    "open_store",
]


def open_store(spec: str) -> StateStore:
    """A store from its configuration string: `memory` or `sqlite:PATH`."""
    if spec == "memory":
        return MemoryStore()
    kind, sep, path = spec.partition(":")
    if kind == "sqlite" and sep and path:
        return SqliteStore(path)
    raise ValueError(f"unknown state store {spec!r}: expected 'memory' or 'sqlite:PATH'")
