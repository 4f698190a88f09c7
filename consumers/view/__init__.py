"""The read side (DESIGN §8): the engine's published records projected into a database that
operators query, SQLite embedded or PostgreSQL shared, through one SQLAlchemy Core code path.

- `fold`: a case's row as a pure function of its records (retractions included);
- `tables`: the tables, their schema version, and the rebuild a version change calls for;
- `projection`: one batch of consumed records into the database in one transaction, offsets
  included, idempotent;
- `queries`: what the API and the CLI read; `counts`: the backlog and the breach forecast;
- `access`: the token file, scopes (a WHERE clause in every query) and session cookies;
- `api`, `app`: the JSON API (FastAPI) and the application `fengqiao view` serves;
  `responses`: its wire models; `export`: its CSV downloads;
- `console`: the web console's pages (data by `pages`, charts by `charts`, words by `labels`;
  `templates/` and `static/` beside them);
- `consume`: the consumer loop of `fengqiao view` (the transitions topic into `projection`,
  offsets from the database, readiness), with its `metrics`; `serve`: uvicorn on a thread, and
  `/metrics` and the probes in front of the app; `settings`: the `FENGQIAO_VIEW_*` variables.

This room sits beside `bench` and `demo`: above the Kafka and runtime rooms, below the CLI.
"""

from __future__ import annotations

from consumers.view.fold import TierOrder
from engine.registry import WorkflowRegistry


def tier_order(registry: WorkflowRegistry) -> TierOrder:
    """Each loaded workflow version's ladder, lowest rung first (what `escalations` counts)."""
    return {
        (name, version): tuple(workflow.spec.tiers)
        for name, versions in registry.workflows.items()
        for version, workflow in versions.items()
    }
