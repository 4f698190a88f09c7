"""The soak benchmark (consumers/bench/soak.py) on a tiny load: with a retention the store and
the compacted changelog stop growing once cases start retiring; kept for ever, they grow."""

from __future__ import annotations

import pytest

from consumers.bench.soak import soak
from tests.conftest import WORKFLOWS

pytestmark = pytest.mark.unit


def test_with_a_retention_the_store_and_changelog_stay_flat() -> None:
    kept = soak(WORKFLOWS, months=5, cases=120, retention_days=30, seed=3)["months"]
    forever = soak(WORKFLOWS, months=5, cases=120, retention_days=0, seed=3)["months"]
    assert [m["events"] for m in kept] == [m["events"] for m in forever]
    assert kept[-1]["retired"] > 2 * 120
    assert forever[-1]["retired"] == 0
    assert forever[-1]["cases_in_store"] == forever[-1]["changelog_keys"] == 5 * 120
    # past the first months every month adds as many retirements as cases: level
    level = [m["cases_in_store"] for m in kept[2:]]
    assert max(level) - min(level) < 60
    assert all(m["changelog_keys"] == m["cases_in_store"] == m["restored"] for m in kept)
    assert kept[-1]["tombstones"] == kept[-1]["retired"]
