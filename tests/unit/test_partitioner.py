"""`KeyPartitioner` sends every keyed record where kafka-python's `DefaultPartitioner` (and the
Java client) would: remembering a key's hash must never move a case's records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner import DefaultPartitioner

from consumers.kafka.partitioner import KeyPartitioner, key_hash

pytestmark = pytest.mark.unit


class Cluster:
    """The two questions a partitioner asks of kafka-python's cluster metadata."""

    def __init__(self, partitions: set[int]) -> None:
        self.partitions = partitions

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions if topic == "t" else None

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


@given(key=st.binary(max_size=64), count=st.integers(min_value=1, max_value=64))
def test_a_key_goes_where_the_default_partitioner_sends_it(key: bytes, count: int) -> None:
    cluster = Cluster(set(range(count)))
    want = DefaultPartitioner().partition("t", key, key, b"v", b"v", cluster)
    assert KeyPartitioner().partition("t", key, key, b"v", b"v", cluster) == want
    assert KeyPartitioner().partition("t", key, key, b"v", b"v", cluster) == want  # remembered


def test_known_hashes_and_refusals() -> None:
    assert key_hash(b"21") == -973932308 & 0x7FFFFFFF  # Kafka UtilsTest: murmur2("21")
    cluster = Cluster({0, 1, 2})
    assert KeyPartitioner().partition("t", None, None, b"v", b"v", cluster) in {0, 1, 2}
    with pytest.raises(ValueError, match="not found"):
        KeyPartitioner().partition("other", b"k", b"k", b"v", b"v", cluster)
