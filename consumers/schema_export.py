"""Export the public contracts as JSON Schema files, for editors and integrators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.events import CaseEvent, CaseReported
from schemas.records import OutputRecord
from schemas.workflow import WorkflowSpec

SCHEMAS: dict[str, Any] = {
    "workflow": WorkflowSpec,
    "case-event": CaseEvent,
    "case-reported-payload": CaseReported,
    "output-record": OutputRecord,
}


def schema_documents() -> dict[str, str]:
    """File name → JSON text, stable (sorted keys) so the committed copies can be compared."""
    docs: dict[str, str] = {}
    for name, model in SCHEMAS.items():
        if isinstance(model, type) and issubclass(model, BaseModel):
            schema = model.model_json_schema()
        else:
            schema = TypeAdapter(model).json_schema()
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        docs[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return docs


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_documents().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
