"""`fengqiao schemas export`: the public contracts as JSON Schema files, an AsyncAPI 3 document,
and the OpenAPI document of the view's API (`consumers/view/app.py`).

Everything is generated from the pydantic models and the channel files (a channel's native
messages are declared in `workflows/channels/`), so the published contract cannot drift from
what runs; a test fails when the committed copies are stale. Output is stable (sorted keys).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from consumers.view.app import openapi_document
from engine.channels import Channel
from schemas.channel import ChannelSpec
from schemas.events import CaseEvent, CaseReported
from schemas.records import EventRejected, OutputRecord
from schemas.workflow import WorkflowSpec

VERSION = "0.1.0"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"

SCHEMAS: dict[str, Any] = {
    "workflow": WorkflowSpec,
    "channel": ChannelSpec,
    "case-event": CaseEvent,
    "case-reported-payload": CaseReported,
    "output-record": OutputRecord,
}


def _schema(model: Any, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    schema: dict[str, Any] = adapter.json_schema(ref_template=ref_template)
    return schema


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_documents(channels: Mapping[str, Channel]) -> dict[str, str]:
    """Relative file name → JSON text."""
    docs: dict[str, str] = {}
    for name, model in SCHEMAS.items():
        docs[f"{name}.schema.json"] = _dump({"$schema": JSON_SCHEMA, **_schema(model)})
    for name, channel in sorted(channels.items()):
        schema = {"$schema": JSON_SCHEMA, **_schema(channel.parser)}
        docs[f"intake/{name}.schema.json"] = _dump(schema)
    docs["asyncapi.json"] = _dump(asyncapi_document(channels))
    docs["view-api.openapi.json"] = _dump(openapi_document())
    return docs


def asyncapi_document(intake: Mapping[str, Channel]) -> dict[str, Any]:
    """AsyncAPI 3.0 description of every topic, from the engine's point of view."""
    components: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def message(name: str, title: str, model: Any, key: str) -> None:
        schema = _asyncapi_schema(_schema(model, ref_template="#/components/schemas/{model}"))
        components.update(schema.pop("$defs", {}))
        components[name] = schema
        messages[name] = {
            "name": name,
            "title": title,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {
                "kafka": {"key": {"type": "string", "description": key}, "bindingVersion": "0.5.0"}
            },
        }

    def channel(cid: str, address: str, msg: str, *, action: str, about: str, who: str) -> None:
        channels[cid] = {
            "address": address,
            "description": about,
            "messages": {msg: {"$ref": f"#/components/messages/{msg}"}},
        }
        operations[f"{action}{cid[0].upper()}{cid[1:]}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": who,
            "messages": [{"$ref": f"#/channels/{cid}/messages/{msg}"}],
        }

    for name, compiled in sorted(intake.items()):
        cid = "intake" + "".join(p.title() for p in name.replace("-", " ").split())
        msg = cid + "Message"
        message(
            msg, f"{name} native message", compiled.parser, "The upstream id of the case (any)."
        )
        channel(
            cid,
            f"fengqiao.intake.{name}",
            msg,
            action="receive",
            about=compiled.spec.description or f"The {name} channel.",
            who=f"The {name} system publishes; the adapter consumes it as source {name}.",
        )
    message("CaseEvent", "Canonical case event", CaseEvent, "case_id (UTF-8)")
    channel(
        "caseEvents",
        "fengqiao.case-events",
        "CaseEvent",
        action="receive",
        about="Canonical events from the adapters (or trusted producers), keyed by case_id.",
        who="Adapters publish; the engine consumes with read_committed.",
    )
    message("OutputRecord", "Engine output record", OutputRecord, "case_id (UTF-8)")
    channel(
        "transitions",
        "fengqiao.transitions",
        "OutputRecord",
        action="send",
        about="Transitions, SLA warnings and breaches, clock changes and closures; per case in "
        "seq order.",
        who="The engine publishes transactionally; read with read_committed.",
    )
    message("EventRejected", "Refused input", EventRejected, "case_id when known, else none")
    channel(
        "deadLetter",
        "fengqiao.dead-letter",
        "EventRejected",
        action="send",
        about="Refused inputs with the reason, JSON paths of invalid fields, the original bytes "
        "and headers.",
        who="Adapters and engine publish; operators consume.",
    )
    components["CaseSnapshot"] = {
        "type": "object",
        "description": "The engine's internal snapshot of one case (compacted changelog).",
    }
    messages["CaseSnapshot"] = {
        "name": "CaseSnapshot",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/CaseSnapshot"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "case_id (UTF-8)"},
                "bindingVersion": "0.5.0",
            }
        },
    }
    channel(
        "caseState",
        "fengqiao.case-state",
        "CaseSnapshot",
        action="send",
        about="Compacted changelog of case snapshots, co-partitioned with case-events; internal.",
        who="The engine writes it and restores from it; nobody else.",
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Fengqiao dispute-escalation engine",
            "version": VERSION,
            "description": "Topics of the engine: one intake topic per upstream system, the "
            "canonical case events, the engine's outputs and its changelog.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": components, "messages": messages},
    }


def _kafka_key(description: str) -> dict[str, Any]:
    return {
        "kafka": {"key": {"type": "string", "description": description}, "bindingVersion": "0.5.0"}
    }


def _asyncapi_schema(node: Any) -> Any:
    """AsyncAPI's schema dialect names the discriminator property with a plain string, where
    pydantic writes OpenAPI's `{"propertyName": …, "mapping": …}`."""
    if isinstance(node, dict):
        out = {k: _asyncapi_schema(v) for k, v in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(v) for v in node]
    return node


def write_schemas(folder: Path, channels: Mapping[str, Channel]) -> list[Path]:
    written = []
    for name, text in schema_documents(channels).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
