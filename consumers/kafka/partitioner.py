"""Kafka's key partitioning, with each key's hash remembered.

Records keyed by case id go to `murmur2(key) % partitions`, the rule of the Java client and of
kafka-python's `DefaultPartitioner`, so every client agrees where a case's records are.
kafka-python computes murmur2 in pure Python for every record: under a profile it was about a
fifth of `send()`, which the engine calls ~2 times per event. A case's records share its key and
mostly come in bursts (one event, several records; a batch holding several events of a case),
so the hash of a key is remembered (a bounded cache: a key costs ~100 bytes of it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2

HASHES_KEPT = 1 << 16
"""Keys whose hash is remembered (least recently used go first)."""


@lru_cache(maxsize=HASHES_KEPT)
def key_hash(key: bytes) -> int:
    """The non-negative murmur2 hash Kafka partitions a key by."""
    return int(murmur2(key)) & 0x7FFFFFFF


class KeyPartitioner(DefaultPartitioner):  # type: ignore[misc]  # kafka-python is untyped
    """`DefaultPartitioner` with `key_hash` remembered; unkeyed records are left to it."""

    def partition(  # noqa: PLR0917  (kafka-python calls it positionally)
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: Any,
        cluster: Any,
    ) -> int:
        if serialized_key is None:
            return int(super().partition(topic, key, None, value, serialized_value, cluster))
        partitions = cluster.partitions_for_topic(topic)
        if partitions is None:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        ordered = sorted(partitions)
        return int(ordered[key_hash(bytes(serialized_key)) % len(ordered)])
