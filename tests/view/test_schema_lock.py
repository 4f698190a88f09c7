"""The schema lock of the read model on PostgreSQL (consumers/view/tables.py `schema_lock`)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from consumers.view.consume import ViewConsumer
from consumers.view.fold import TierOrder
from consumers.view.metrics import ViewMetrics
from consumers.view.projection import stored_offsets
from consumers.view.settings import load_view_config
from consumers.view.tables import create_view_engine, meta, offsets, prepare, rebuild, schema_lock

TOPIC = "lock.transitions"


@pytest.mark.integration
def test_of_two_views_on_a_stale_postgresql_schema_one_rebuilds_the_other_waits(
    postgres_url: sa.URL, tiers: TierOrder
) -> None:
    """A rolling update starts a view while another still prepares: the second waits for the
    schema lock, then finds the schema current and drops nothing."""
    db = create_view_engine(postgres_url)
    try:
        assert prepare(db) == "created"
        with db.begin() as conn:
            conn.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value="0"))
        config = load_view_config({}, {"topic_transitions": TOPIC})
        second = ViewConsumer(db, tiers, config, ViewMetrics.create(CollectorRegistry()),
                              consumer=lambda: None)  # fmt: skip
        states: list[str] = []
        with schema_lock(db):  # the first view, preparing
            waiting = threading.Thread(target=lambda: states.append(second.prepare_database()))
            waiting.start()
            waiting.join(timeout=1.0)
            assert waiting.is_alive()  # blocked on the lock
            rebuild(db)
            with db.begin() as conn:  # what the first view projected meanwhile
                conn.execute(sa.insert(offsets).values(topic=TOPIC, partition=0, next_offset=7))
        waiting.join(timeout=30)
        assert states == ["current"]
        with db.connect() as conn:
            assert stored_offsets(conn) == {(TOPIC, 0): 7}  # not dropped a second time
    finally:
        db.dispose()
