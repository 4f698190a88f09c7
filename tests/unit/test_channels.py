"""Channel files (`workflows/channels/<channel>.yaml`): what `fengqiao validate` says about each
kind of mistake (at its line and column, with a hint), and what the interpreter makes of
messages (routing rules, constants, optional fields, identity, ignored kinds, refusals).

Channel files under test are written into `tmp_path/channels/` beside copies of the shipped
workflows, so the cross-checks against the workflows run exactly as for the shipped folder.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from consumers.cli.main import main
from engine.channel_checks import check_channel_file, check_channel_paths, load_channels
from engine.channels import Channel, compile_channel
from engine.core import Engine
from engine.intake import IntakeContext, Refused, Translation, interpret, translate
from engine.registry import WorkflowRegistry, check_paths
from schemas.channel import ChannelSpec, FieldDecl
from schemas.events import CaseEvent, CaseReported
from schemas.workflow import WorkflowSpec
from tests.integration.intake_samples import CHANNELS, SAMPLES, encode
from tests.unit.fuzzing import json_values

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
SHIPPED = WORKFLOWS / "channels"

LINE = re.compile(r"^(?P<path>.+?):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): error: (?P<msg>\S.*)$")


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A workflows folder: copies of the shipped workflows and an empty `channels/`."""
    for path in WORKFLOWS.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "channels").mkdir()
    return tmp_path


# -- the shipped files -----------------------------------------------------------------------


def test_shipped_channels_validate_against_the_shipped_workflows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = validate(capsys, str(WORKFLOWS))
    assert (code, out) == (0, "")
    assert "6 channel(s)" in err
    assert err.startswith("ok: 6 workflow(s) and 6 channel(s) valid in ")


def test_each_shipped_channel_file_named_directly_is_valid(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = sorted(SHIPPED.glob("*.yaml"))
    assert [p.stem for p in files] == sorted(CHANNELS)
    code, out, err = validate(capsys, *map(str, files))
    assert (code, out) == (0, "")
    assert "6 channel(s)" in err


def test_shipped_channels_load_and_compile() -> None:
    registry = WorkflowRegistry.load(WORKFLOWS)
    channels = load_channels(WORKFLOWS, registry.specs())
    assert sorted(channels) == ["court", "grid", "hotline-12345", "online", "petition", "police"]
    for name, channel in channels.items():
        assert channel.name == name == Path(channel.path).stem
        assert set(channel.kinds) == set(channel.spec.kinds)


# -- each kind of mistake, where it is and what it says ----------------------------------------

BASE = """\
channel: police
kinds:
  transfer:
    fields:
      message_id: {type: id}
      incident_no: {type: id}
      received_at: {type: timestamp}
      category: {type: category}
      summary: {type: text}
      parties: {type: persons}
    case_number: incident_no
    occurred_at: received_at
    emits:
      - type: case.reported
        workflow: dispute-escalation
        attributes: {category: category}
        person_key: [parties]
"""
"""A valid police channel; its line numbers are the ones the expectations below use."""

OUTCOME = """\
  outcome:
    fields:
      message_id: {type: id}
      incident_no: {type: id}
      at: {type: timestamp}
      result: {type: string, enum: [succeeded, failed]}
    case_number: incident_no
    occurred_at: at
    emits:
      - type: "mediation.{result}"
"""
"""A second kind, lines 18-27 when appended to BASE."""


def edited(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def workflow_specs() -> list[WorkflowSpec]:
    """The shipped workflows (the same as the copies in `folder`), checked once."""
    checked, problems = check_paths([WORKFLOWS])
    assert problems == []
    return [c.spec for c in checked]


def problems_of(
    folder: Path, workflows: list[WorkflowSpec], text: str, name: str = "police"
) -> list[str]:
    """What `validate` says about one channel file of `folder`: `LINE:COL: MESSAGE` each (the
    CLI runs the same check; `test_validate_prints_the_problems_of_channel_files` shows it)."""
    path = folder / "channels" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    checked, problems = check_channel_paths([path], workflows)
    assert len(checked) == (0 if problems else 1)
    found = []
    for problem in sorted(problems):
        m = LINE.fullmatch(str(problem))
        assert m is not None, problem
        assert m["path"] == str(path)
        found.append(f"{m['line']}:{m['col']}: {m['msg']}")
    return found


def test_the_base_channel_is_valid(folder: Path, workflow_specs: list[WorkflowSpec]) -> None:
    assert problems_of(folder, workflow_specs, BASE) == []
    assert problems_of(folder, workflow_specs, BASE + OUTCOME) == []


WHEN = "        when: "

MISTAKES: dict[str, tuple[str, list[str]]] = {
    "broken YAML": (
        edited(BASE, ("      category: {type: category}\n", "      category: {type: category\n")),
        ["9:14: YAML syntax error: while parsing a flow mapping; expected ',' or '}', but got "
         "':'"],
    ),
    "unknown key, with did-you-mean": (
        edited(BASE, ("    case_number: incident_no", "    case_numbr: incident_no")),
        ["11:5: unknown key 'case_numbr' (did you mean 'case_number'?)"],
    ),
    "wrong field type name": (
        edited(BASE, ("category: {type: category}", "category: {type: categry}")),
        ["8:24: kinds.transfer.fields.category.type: Input should be 'id', 'code', 'category', "
         "'string', 'text', 'int', 'bool', 'timestamp', 'person' or 'persons'"],
    ),
    "unknown workflow": (
        edited(BASE, ("workflow: dispute-escalation", "workflow: dispute-escalaton")),
        ["15:19: unknown workflow 'dispute-escalaton' (did you mean 'dispute-escalation'?)"],
    ),
    "event type not in the vocabulary (a literal)": (
        edited(BASE + OUTCOME, ('"mediation.{result}"', "case.withdrawm")),
        ["27:15: event type 'case.withdrawm' is not in the vocabulary of dispute-escalation "
         "(did you mean 'case.withdrawn'?)"],
    ),
    "event type not in the vocabulary (a template value)": (
        edited(BASE + OUTCOME, ("enum: [succeeded, failed]", "enum: [succeeded, faild]")),
        ["27:15: event type 'mediation.faild' is not in the vocabulary of dispute-escalation "
         "(did you mean 'mediation.failed'?)"],
    ),
    "attribute the workflow does not declare": (
        edited(BASE, ("{category: category}", "{category: category, sation: incident_no}")),
        ["16:42: workflow 'dispute-escalation' declares no attribute 'sation' "
         "(did you mean 'station'?)"],
    ),
    "attribute enum wider than the workflow's": (
        edited(
            BASE,
            ("      summary:",
             "      risk: {type: string, enum: [green, amber, red]}\n      summary:"),
            ("{category: category}", "{category: category, risk: risk}"),
        ),
        ["17:48: attribute 'risk' of workflow 'dispute-escalation': 'amber' of 'risk' are not "
         "allowed there"],
    ),
    "attribute of the wrong type": (
        edited(BASE, ("{category: category}", "{category: category, consent: incident_no}")),
        ["16:51: attribute 'consent' of workflow 'dispute-escalation': the field 'incident_no' "
         "is id, the workflow wants bool"],
    ),
    "constant attribute outside the workflow's enum": (
        edited(BASE, ("{category: category}", "{category: category, risk: {value: amber}}")),
        ["16:48: attribute 'risk' of workflow 'dispute-escalation': the constant 'amber' is not "
         "one of 'green', 'yellow', 'red'"],
    ),
    "required workflow attribute not supplied": (
        edited(BASE, ("channel: police", "channel: grid"), ("workflow: dispute-escalation",
                                                           "workflow: hotline-12345")),
        ["16:9: workflow 'hotline-12345' requires attribute 'urgency', which this event does "
         "not supply"],
    ),
    "personal text mapped to an attribute": (
        edited(BASE, ("{category: category}", "{category: category, district: summary}")),
        ["16:52: 'summary' is personal (text) and is never copied onward; declare it "
         "`personal: false` if it holds no personal data"],
    ),
    "a party mapped to a payload field": (
        edited(
            BASE + OUTCOME,
            ("      result: {", "      mediator: {type: person}\n      result: {"),
            ('      - type: "mediation.{result}"\n',
             '      - type: "mediation.{result}"\n        payload: {by: mediator}\n'),
        ),
        ["29:23: 'mediator' is a party: parties never leave the adapter (use person_key to link "
         "reports by the same person)"],
    ),
    "rule reading an unknown field": (
        edited(BASE, ("        workflow:", f"{WHEN}message.categroy == 'x'\n        workflow:")),
        ["15:15: when: unknown field 'categroy' (did you mean 'category'?)"],
    ),
    "rule reading a party": (
        edited(BASE, ("        workflow:", f"{WHEN}size(message.parties) > 1\n        workflow:")),
        ["15:15: when: 'parties' is a party; rules cannot read parties"],
    ),
    "rule that does not compile": (
        edited(BASE, ("        workflow:", f"{WHEN}message.category ==\n        workflow:")),
        ["15:15: when: Failed to parse expression 'message.category ==': …"],
    ),
    "rule reading something else than the message": (
        edited(BASE, ("        workflow:", f"{WHEN}case.attrs.risk == 'red'\n        workflow:")),
        ["15:15: when: unknown name(s) case; a rule may read only message"],
    ),
    "template over a field without an enum": (
        edited(BASE + OUTCOME, ("result: {type: string, enum: [succeeded, failed]}",
                                "result: {type: string}")),
        ["27:15: {result} must name a required string field with an enum"],
    ),
    "template over an unknown field": (
        edited(BASE + OUTCOME, ('"mediation.{result}"', '"mediation.{reslt}"')),
        ["27:15: unknown field 'reslt' (did you mean 'result'?)"],
    ),
    "{field, map} type missing enum values": (
        edited(BASE + OUTCOME, ('"mediation.{result}"',
                                "{field: result, map: {succeeded: mediation.succeeded}}")),
        ["27:36: no event type for failed"],
    ),
    "{field, map} type with a value the field does not have": (
        edited(BASE + OUTCOME, ('"mediation.{result}"', "{field: result, map: {succeeded: "
                                "mediation.succeeded, failed: mediation.failed, "
                                "faild: mediation.failed}}")),
        ["27:102: 'faild' is not a value of 'result' (did you mean 'failed'?)"],
    ),
    "case_number naming a field that is not an id": (
        edited(BASE, ("case_number: incident_no", "case_number: category")),
        ["11:18: case_number must name a required field of type id, not 'category' (category)"],
    ),
    "case_number naming an unknown field": (
        edited(BASE, ("case_number: incident_no", "case_number: incident")),
        ["11:18: unknown field 'incident' (did you mean 'incident_no'?)"],
    ),
    "occurred_at naming a field that is not a timestamp": (
        edited(BASE, ("occurred_at: received_at", "occurred_at: incident_no")),
        ["12:18: occurred_at must name a required field of type timestamp, not 'incident_no' "
         "(id)"],
    ),
    "both case_number and case_id": (
        edited(BASE, ("    occurred_at:", "    case_id: incident_no\n    occurred_at:")),
        ["4:5: kinds.transfer: give exactly one of case_number and case_id"],
    ),
    "two unconditional events without distinct id_suffix": (
        BASE + "      - type: case.withdrawn\n",
        ["18:9: two events of one message need different id_suffix values (or conditions "
         "under `when` that exclude each other)"],
    ),
    "channel name differing from the file name": (
        edited(BASE, ("channel: police", "channel: polices")),
        ["1:10: channel 'polices' must be written in polices.yaml",
         "15:19: workflow 'dispute-escalation' does not list 'polices' among its sources: its "
         "cases would refuse this channel's events"],
    ),
    "channel not listed in the workflow's sources": (
        edited(BASE, ("channel: police", "channel: mediators")),
        ["15:19: workflow 'dispute-escalation' does not list 'mediators' among its sources: its "
         "cases would refuse this channel's events"],
    ),
    "last workflow rule with a `when`": (
        edited(BASE, ("        workflow: dispute-escalation\n",
                      "        workflow:\n"
                      "          - when: message.category == 'wage_arrears'\n"
                      "            use: dispute-escalation-v2\n"
                      "          - when: message.category != 'wage_arrears'\n"
                      "            use: dispute-escalation\n")),
        ["16:11: the last workflow rule needs no `when`: it is the default when no other rule "
         "holds",
         "17:18: unknown workflow 'dispute-escalation-v2' (did you mean 'dispute-escalation'?)"],
    ),
    "attributes on an event that opens no case": (
        edited(BASE + OUTCOME, ('      - type: "mediation.{result}"\n',
                                '      - type: "mediation.{result}"\n'
                                "        attributes: {risk: {value: red}}\n")),
        ["28:9: attributes belongs to a case.reported event only"],
    ),
    "case.reported without a workflow": (
        edited(BASE, ("        workflow: dispute-escalation\n", "")),
        ["14:9: a case.reported event needs `workflow` (the workflow new cases open)"],
    ),
    "unknown time zone": (
        edited(BASE, ("kinds:\n", "timezone: Asia/Shangai\nkinds:\n")),
        ["2:11: unknown time zone 'Asia/Shangai'"],
    ),
}  # fmt: skip
"""Each mistake: the channel file, and every problem `validate` reports (`LINE:COL: MESSAGE`;
one ending in '…' is matched as a prefix, where the rest is the CEL parser's own words)."""


FILE_NAMES = {
    "required workflow attribute not supplied": "grid",
    "channel not listed in the workflow's sources": "mediators",
}
"""Files named after another channel than police (a file is named after its channel)."""


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_mistake_is_reported_where_it_is(
    folder: Path, workflow_specs: list[WorkflowSpec], mistake: str
) -> None:
    text, expected = MISTAKES[mistake]
    found = problems_of(folder, workflow_specs, text, FILE_NAMES.get(mistake, "police"))
    assert len(found) == len(expected), found
    for got, want in zip(found, expected, strict=True):
        assert got.startswith(want[:-1]) if want.endswith("…") else got == want, got


@pytest.mark.parametrize(
    "mistake", ["unknown workflow", "attribute enum wider than the workflow's", "broken YAML"]
)
def test_validate_prints_the_problems_of_channel_files(
    capsys: pytest.CaptureFixture[str], folder: Path, mistake: str
) -> None:
    """In a folder's `channels/`, or named directly: `PATH:LINE:COL: error: MESSAGE`, exit 1."""
    text, expected = MISTAKES[mistake]
    path = folder / "channels" / "police.yaml"
    path.write_text(text, encoding="utf-8")
    lines = [f"{path}:{where.replace(': ', ': error: ', 1)}\n" for where in expected]
    for target in (folder, path):
        code, out, err = validate(capsys, str(target))
        assert (code, out, err) == (1, "".join(lines), "")


def test_a_channel_file_named_directly_is_checked_against_the_folder_above(
    capsys: pytest.CaptureFixture[str], folder: Path
) -> None:
    path = folder / "channels" / "police.yaml"
    path.write_text(BASE, encoding="utf-8")
    ok = f"ok: 0 workflow(s) and 1 channel(s) valid in {path}\n"
    assert validate(capsys, str(path)) == (0, "", ok)
    for version in folder.glob("dispute-escalation*.yaml"):  # the workflow it opens is gone
        version.unlink()
    code, out, _ = validate(capsys, str(path))
    assert code == 1
    assert out == f"{path}:15:19: error: unknown workflow 'dispute-escalation'\n"


def test_non_personal_text_may_travel_onward(
    folder: Path, workflow_specs: list[WorkflowSpec]
) -> None:
    text = edited(
        BASE + OUTCOME,
        ("summary: {type: text}", "summary: {type: text, personal: false}"),
        ("{category: category}", "{category: category, district: summary}"),
        ("      result: {", "      note: {type: text, personal: false}\n      result: {"),
        ('      - type: "mediation.{result}"\n',
         '      - type: "mediation.{result}"\n        payload: {remark: note}\n'),
    )  # fmt: skip
    assert problems_of(folder, workflow_specs, text) == []


def test_exclusive_conditions_need_no_id_suffix(
    folder: Path, workflow_specs: list[WorkflowSpec]
) -> None:
    text = BASE + OUTCOME.replace(
        '      - type: "mediation.{result}"\n',
        "      - {type: mediation.succeeded, when: message.result == 'succeeded'}\n"
        "      - {type: mediation.failed, when: message.result == 'failed'}\n",
    )
    assert problems_of(folder, workflow_specs, text) == []


# -- gaps in the checks (each makes every message of a kind a dead letter at run time) ---------


def test_an_empty_list_of_workflow_rules_is_refused(
    folder: Path, workflow_specs: list[WorkflowSpec]
) -> None:
    text = edited(BASE, ("workflow: dispute-escalation", "workflow: []"))
    assert problems_of(folder, workflow_specs, text) != []


@pytest.mark.parametrize(
    "chosen", ['"case.{what}"', "{field: what, map: {new: case.reported, gone: case.withdrawn}}"]
)
def test_an_event_type_that_may_be_case_reported_needs_a_workflow(
    folder: Path, workflow_specs: list[WorkflowSpec], chosen: str
) -> None:
    enum = "[reported, withdrawn]" if "{what}" in chosen else "[new, gone]"
    text = edited(
        BASE + OUTCOME,
        ("result: {type: string, enum: [succeeded, failed]}",
         f"what: {{type: string, enum: {enum}}}"),
        ('"mediation.{result}"', chosen),
    )  # fmt: skip
    assert problems_of(folder, workflow_specs, text) != []


@pytest.mark.parametrize("event_type", ["sla.breached", "case.migrated"])
def test_a_channel_cannot_emit_events_only_the_engine_makes(
    folder: Path, workflow_specs: list[WorkflowSpec], event_type: str
) -> None:
    text = edited(BASE + OUTCOME, ('"mediation.{result}"', event_type))
    assert problems_of(folder, workflow_specs, text) != []


def test_one_mistake_in_a_template_is_one_problem(
    folder: Path, workflow_specs: list[WorkflowSpec]
) -> None:
    text = edited(BASE + OUTCOME, ('"mediation.{result}"', '"mediation.{result}.{at}"'))
    assert problems_of(folder, workflow_specs, text) == [
        "27:15: an event type template has one {field} placeholder at most"
    ]


def test_a_workflow_with_only_preview_versions_cannot_open_cases(
    folder: Path, workflow_specs: list[WorkflowSpec]
) -> None:
    previews = [s for s in workflow_specs if s.name != "dispute-escalation" or s.preview]
    assert any(s.name == "dispute-escalation" for s in previews)
    assert problems_of(folder, previews, BASE) != []


# -- the interpreter: routing by rule through a whole folder ------------------------------------

WAGE_ARREARS = """\
name: wage-arrears
version: 1
tiers: [labour]
sources: [hotline-12345]
states:
  labour.handling: {tier: labour}
  resolved: {terminal: true, outcome: resolved}
routing:
  - dest: labour.handling
transitions:
  - trigger: order.replied
    source: labour.handling
    dest: resolved
attributes:
  urgency: {type: string, enum: [urgent, general], required: true}
  category: {type: string}
  district: {type: string}
  street: {type: string}
  person_key: {type: string}
events:
  order.replied: {payload: {by: {type: string}}}
"""
"""A minimal workflow for wage arrears reported on the hotline (labour inspection handles them)."""

ROUTED = """\
        workflow:
          - when: message.category == "wage_arrears"
            use: wage-arrears
          - use: hotline-12345
"""


@pytest.fixture
def routed(folder: Path) -> Path:
    """`folder` with the shipped channels, the hotline routing wage arrears to `wage-arrears`."""
    (folder / "wage-arrears.yaml").write_text(WAGE_ARREARS, encoding="utf-8")
    for path in SHIPPED.glob("*.yaml"):
        shutil.copy(path, folder / "channels" / path.name)
    hotline = folder / "channels" / "hotline-12345.yaml"
    text = hotline.read_text(encoding="utf-8")
    hotline.write_text(
        edited(text, ("        workflow: hotline-12345\n", ROUTED)), encoding="utf-8"
    )
    return folder


def test_a_rule_routes_a_category_to_its_own_workflow(
    capsys: pytest.CaptureFixture[str], routed: Path
) -> None:
    assert validate(capsys, str(routed)) == (
        0, "", f"ok: 7 workflow(s) and 6 channel(s) valid in {routed}/\n"
    )  # fmt: skip
    registry = WorkflowRegistry.load(routed)
    ctx = IntakeContext(load_channels(routed, registry.specs()), person_key_secret=b"k")
    order = SAMPLES["hotline-12345"][0]
    wages = {**order, "message_id": "HL-W-1", "ticket_no": "W-1", "category": "wage_arrears"}
    (routed_event,) = interpret("hotline-12345", encode(wages), ctx).events
    (default_event,) = interpret("hotline-12345", encode(order), ctx).events
    assert routed_event.payload["workflow"] == "wage-arrears"
    assert default_event.payload["workflow"] == "hotline-12345"
    assert routed_event.payload["attributes"]["category"] == "wage_arrears"
    decision = Engine(registry).apply(None, routed_event)
    assert decision.rejection is None
    assert decision.case is not None
    assert (decision.case.workflow, decision.case.state) == ("wage-arrears", "labour.handling")


def test_every_workflow_a_rule_may_choose_is_checked(
    capsys: pytest.CaptureFixture[str], routed: Path
) -> None:
    """Routing wage arrears to the petition workflow instead: it accepts the hotline as a
    source, but declares none of the attributes the work order supplies."""
    hotline = routed / "channels" / "hotline-12345.yaml"
    hotline.write_text(
        edited(hotline.read_text(encoding="utf-8"), ("use: wage-arrears", "use: petition")),
        encoding="utf-8",
    )
    code, out, _ = validate(capsys, str(routed))
    assert code == 1
    assert out.splitlines() == [
        f"{hotline}:{line}:11: error: workflow 'petition' declares no attribute '{name}'{hint}"
        for line, name, hint in [
            (32, "urgency", ""), (33, "category", ""), (34, "district", ""),
            (35, "street", " (did you mean 'repeat'?)"),
        ]
    ]  # fmt: skip


# -- the interpreter: one channel compiled directly (no workflows to check against) -------------

DEMO = """\
channel: demo
timezone: Asia/Tokyo
kinds:
  order:
    fields:
      message_id: {type: id}
      ticket_no: {type: id}
      at: {type: timestamp}
      category: {type: category}
      street: {type: code, required: false}
      rating: {type: string, enum: [good, bad], required: false}
      content: {type: text}
      urgent: {type: bool, default: false}
      caller: {type: person}
    case_number: ticket_no
    occurred_at: at
    emits:
      - type: case.reported
        id_suffix: reported
        workflow:
          - {when: 'message.category == "wage_arrears"', use: wage-arrears}
          - {use: hotline-12345}
        attributes:
          category: category
          street: street
          rating: rating
          level: 3
          flagged: true
          origin: {value: demo}
        person_key: [caller]
      - type: order.flagged
        id_suffix: flagged
        when: message.urgent
        payload: {by: {value: center}, weight: 2, urgent: urgent, street: street}
  link:
    fields:
      message_id: {type: id}
      case_ref: {type: id}
      at: {type: timestamp}
      count: {type: int}
    case_id: case_ref
    occurred_at: at
    emits:
      - {type: case.linked, when: message.count > 5}
      - {type: case.relinked, id_suffix: again, when: message.count > 10}
  ping:
    description: Accepted and ignored (a heartbeat).
    fields:
      message_id: {type: id}
      ticket_no: {type: id}
      at: {type: timestamp}
    case_number: ticket_no
    occurred_at: at
  remark:
    fields:
      message_id: {type: id}
      ticket_no: {type: id}
      at: {type: timestamp}
      note: {type: text, personal: false}
      score: {type: int, required: false}
    case_number: ticket_no
    occurred_at: at
    emits:
      - {type: case.remarked, payload: {note: note}}
      - {type: case.scored, id_suffix: scored, when: message.score > 3}
"""
"""Every feature of the interpreter in one file."""


def compiled(text: str, name: str) -> Channel:
    spec, _, problems = check_channel_file(f"{name}.yaml", text.encode())
    assert problems == []
    assert spec is not None
    return compile_channel(spec)


DEMO_CTX = IntakeContext({"demo": compiled(DEMO, "demo")})
KEYED_CTX = IntakeContext(DEMO_CTX.channels, person_key_secret=b"unit-secret")
AT = "2026-03-02T09:00:00+08:00"
ORDER = {"kind": "order", "message_id": "M-1", "ticket_no": "T-1", "at": AT, "category": "noise",
         "content": "张伟 13812345678", "caller": {"phone": "13812345678"}}  # fmt: skip


def run(message: dict[str, Any], ctx: IntakeContext = DEMO_CTX) -> Translation:
    result = interpret("demo", encode(message), ctx)
    assert isinstance(result, Translation)
    return result


def test_rules_choose_the_workflow_first_match_wins() -> None:
    for category, workflow in [("wage_arrears", "wage-arrears"), ("noise", "hotline-12345")]:
        (event,) = run({**ORDER, "category": category}).events
        assert event.type == "case.reported"
        assert event.payload["workflow"] == workflow


def test_constants_and_copied_fields_fill_attributes_and_payload() -> None:
    message = {**ORDER, "street": "S-07", "rating": "good", "urgent": True}
    reported, flagged = run(message).events
    assert reported.payload == {
        "workflow": "hotline-12345",
        "attributes": {"category": "noise", "street": "S-07", "rating": "good", "level": 3,
                       "flagged": True, "origin": "demo"},
    }  # fmt: skip
    CaseReported.model_validate(reported.payload)
    assert flagged.payload == {"by": "center", "weight": 2, "urgent": True, "street": "S-07"}
    assert "13812345678" not in reported.model_dump_json() + flagged.model_dump_json()


def test_optional_fields_are_left_out_when_absent() -> None:
    reported, flagged = run({**ORDER, "urgent": True}).events
    assert reported.payload["attributes"] == {"category": "noise", "level": 3, "flagged": True,
                                              "origin": "demo"}  # fmt: skip
    assert flagged.payload == {"by": "center", "weight": 2, "urgent": True}
    (with_null,) = run({**ORDER, "street": None}).events
    assert "street" not in with_null.payload["attributes"]


def test_defaults_fill_absent_fields_and_can_be_copied() -> None:
    (reported,) = run(ORDER).events  # urgent defaults to false: no flagged event
    assert reported.event_id == "demo:M-1/reported"


def test_person_key_only_with_a_secret() -> None:
    (plain,) = run(ORDER).events
    (keyed,) = run(ORDER, KEYED_CTX).events
    assert "person_key" not in plain.payload["attributes"]
    key = keyed.payload["attributes"]["person_key"]
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    spaced = {**ORDER, "message_id": "M-2", "caller": {"phone": " 138-1234 5678 "}}
    assert run(spaced, KEYED_CTX).events[0].payload["attributes"]["person_key"] == key


def test_ids_come_from_the_channel_the_message_and_the_suffix() -> None:
    reported, flagged = run({**ORDER, "urgent": True}).events
    assert [e.event_id for e in (reported, flagged)] == ["demo:M-1/reported", "demo:M-1/flagged"]
    assert reported.case_id == flagged.case_id == "demo:T-1"
    assert {reported.source, flagged.source} == {"demo"}
    remarked, scored = run({"kind": "remark", "message_id": "M-3", "ticket_no": "T-1", "at": AT,
                            "note": "called back", "score": 4}).events  # fmt: skip
    assert [e.event_id for e in (remarked, scored)] == ["demo:M-3", "demo:M-3/scored"]
    assert remarked.payload == {"note": "called back"}


def test_a_case_id_field_names_a_whole_case_of_any_channel() -> None:
    link = {"kind": "link", "message_id": "L-1", "case_ref": "grid:R-1", "at": AT, "count": 11}
    linked, relinked = run(link).events
    assert (linked.case_id, linked.event_id, linked.type) == ("grid:R-1", "demo:L-1", "case.linked")
    assert (relinked.case_id, relinked.event_id) == ("grid:R-1", "demo:L-1/again")


def test_naive_time_stamps_are_read_in_the_channel_zone() -> None:
    (event,) = run({**ORDER, "at": "2026-03-02 09:00:00"}).events
    assert event.occurred_at.isoformat() == "2026-03-02T09:00:00+09:00"
    (event,) = run(ORDER).events
    assert event.occurred_at.isoformat() == AT


@pytest.mark.parametrize(
    "message",
    [
        {"kind": "ping", "message_id": "P-1", "ticket_no": "T-1", "at": AT},
        {"kind": "link", "message_id": "L-2", "case_ref": "grid:R-1", "at": AT, "count": 5},
        {"kind": "ping", "message_id": "P-2", "ticket_no": "T-1", "at": AT, "note": "x", "n": 1},
    ],
    ids=["no emits", "every when false", "extra fields ignored"],
)
def test_a_kind_without_events_is_accepted_and_ignored(message: dict[str, Any]) -> None:
    assert run(message) == Translation(message["kind"], [], None)
    assert translate("demo", encode(message), DEMO_CTX) == []


@pytest.mark.parametrize(
    ("message", "path", "case_id"),
    [
        ({**ORDER, "at": "yesterday"}, "$.at", "demo:T-1"),
        ({**ORDER, "rating": "great"}, "$.rating", "demo:T-1"),
        ({**ORDER, "category": "Not A Code"}, "$.category", "demo:T-1"),
        ({"kind": "link", "message_id": "L-3", "case_ref": "grid:R-1", "at": AT}, "$.count",
         "grid:R-1"),
        ({**ORDER, "at": "2999-01-01T00:00:00+08:00"}, "$.at", "demo:T-1"),
    ],
    ids=["bad time stamp", "outside the enum", "bad category", "missing field", "far future"],
)  # fmt: skip
def test_a_refused_message_keeps_its_kind_message_id_and_case_id(
    message: dict[str, Any], path: str, case_id: str
) -> None:
    result = run(message)
    assert result.events == []
    refused = result.refused
    assert refused is not None
    assert refused.reason == "schema_invalid"
    assert path in [e.path for e in refused.errors]
    assert (result.kind, refused.message_id, refused.case_id) == (
        message["kind"], message["message_id"], case_id
    )  # fmt: skip


def test_ids_that_cannot_be_read_are_left_out_of_the_refusal() -> None:
    result = run({**ORDER, "message_id": "no spaces allowed", "ticket_no": 7})
    assert result.refused is not None
    assert (result.kind, result.refused.message_id, result.refused.case_id) == ("order", None, None)
    unknown = run({**ORDER, "kind": "complaint"})
    assert unknown.refused is not None
    assert unknown.refused.errors[0].path == "$.kind"
    assert (unknown.kind, unknown.refused.message_id, unknown.refused.case_id) == ("", None, None)


def test_a_message_no_event_can_be_built_for_is_refused_traceably() -> None:
    # a rule reading an optional field that is absent fails (CEL: null > 3)
    message = {"kind": "remark", "message_id": "M-5", "ticket_no": "T-2", "at": AT}
    result = run(message)
    assert result.events == []
    assert result.refused is not None
    assert result.refused.detail.startswith("a rule of the channel file cannot be evaluated: ")
    assert (result.kind, result.refused.message_id, result.refused.case_id) == (
        message["kind"], message["message_id"], "demo:T-2"
    )  # fmt: skip


def test_the_refusal_itself_names_the_kind() -> None:
    refused = translate("demo", encode({**ORDER, "at": "yesterday"}), DEMO_CTX)
    assert isinstance(refused, Refused)
    assert refused.kind == "order"


def test_an_absent_text_field_is_left_out() -> None:
    remark = {"kind": "remark", "message_id": "M-7", "ticket_no": "T-1", "at": AT, "score": 0}
    (event,) = run(remark).events
    assert event.payload == {}


def translate_ok(channel: str, message: dict[str, Any]) -> list[CaseEvent]:
    result = interpret(channel, encode(message), IntakeContext(CHANNELS))
    assert result.refused is None, result.refused
    return result.events


def test_the_shipped_hotline_leaves_out_what_an_order_does_not_have() -> None:
    order = {k: v for k, v in SAMPLES["hotline-12345"][0].items() if k != "street_code"}
    (reported,) = translate_ok("hotline-12345", order)
    assert set(reported.payload["attributes"]) == {"urgency", "category", "district"}
    rated = {"kind": "follow_up", "message_id": "HL-F-1", "ticket_no": "20250924-0031",
             "at": AT, "result": "rated"}  # fmt: skip
    (event,) = translate_ok("hotline-12345", rated)
    assert (event.type, event.payload) == ("followup.rated", {"reopen": False})


# -- properties -------------------------------------------------------------------------------

KINDS = sorted((name, kind) for name, channel in CHANNELS.items() for kind in channel.kinds)
PERSON = st.fixed_dictionaries(
    {}, optional={"name": st.text(max_size=10), "phone": st.text(max_size=20),
                  "id_number": st.text(max_size=20) | st.none()},
)  # fmt: skip
LIKELY: dict[str, st.SearchStrategy[Any]] = {
    "id": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,30}\Z"),
    "code": st.from_regex(r"\A[A-Za-z0-9_.\-]{1,12}\Z"),
    "category": st.from_regex(r"\A[a-z][a-z0-9_]{0,12}\Z"),
    "string": st.text(max_size=20),
    "text": st.text(max_size=40),
    "int": st.integers(0, 1000),
    "bool": st.booleans(),
    "timestamp": st.datetimes(
        datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=st.one_of(st.none(), st.timezones())
    ).map(datetime.isoformat),
    "person": PERSON,
    "persons": st.lists(PERSON, max_size=3),
}
"""Values of each native type (mostly well-formed, so events get built, not only refusals)."""


def field_values(field: FieldDecl) -> st.SearchStrategy[Any]:
    likely = st.sampled_from(field.enum) if field.enum else LIKELY[field.type]
    return st.integers(0, 19).flatmap(lambda roll: json_values if roll == 0 else likely)


@st.composite
def native_messages(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    channel, kind = draw(st.sampled_from(KINDS))
    fields = CHANNELS[channel].kinds[kind].spec.fields
    message: dict[str, Any] = {"kind": kind}
    for name, field in fields.items():
        if draw(st.integers(0, 19)) > 0:  # now and then a field is missing
            message[name] = draw(field_values(field), label=name)
    message.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
    message["kind"] = kind
    return channel, message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(native_messages())
def test_interpret_never_raises_and_the_source_is_the_channel(
    drawn: tuple[str, dict[str, Any]],
) -> None:
    channel, message = drawn
    result = interpret(channel, json.dumps(message).encode(), IntakeContext(CHANNELS, b"key"))
    assert isinstance(result, Translation)
    assert result.kind in ("", message["kind"])
    if result.refused is not None:
        assert result.events == []
        assert result.refused.reason in ("malformed", "schema_invalid")
        assert result.refused.detail
        return
    assert result.kind == message["kind"]
    ids = [e.event_id for e in result.events]
    assert len(ids) == len(set(ids))
    for event in result.events:
        assert event.source == channel
        assert event.event_id.startswith(f"{channel}:{message['message_id']}")
        if event.type == "case.reported":
            CaseReported.model_validate(event.payload)


FIELD_NAMES = st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z").filter(
    lambda n: n not in {"kind", "message_id", "no", "at"}
)
STRINGS = st.from_regex(r"\A[a-z][a-z0-9_]{0,8}\Z")
BMP = st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"])
"""Characters a JSON escape carries through YAML intact (see the surrogate xfail below)."""
ENUMS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.lists(STRINGS, min_size=1, max_size=4), "code": st.lists(STRINGS, min_size=1,
    max_size=4), "category": st.lists(STRINGS, min_size=1, max_size=4),
    "string": st.lists(st.text(BMP, max_size=8), min_size=1, max_size=4),
    "int": st.lists(st.integers(-1000, 1000), min_size=1, max_size=4),
    "bool": st.lists(st.booleans(), min_size=1, max_size=2),
}  # fmt: skip


@st.composite
def field_decls(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(LIKELY)))
    decl: dict[str, Any] = {"type": kind}
    if kind in ENUMS and draw(st.booleans()):
        decl["enum"] = draw(ENUMS[kind])
    if kind == "int" and draw(st.booleans()):
        decl["minimum"] = draw(st.integers(-10, 10))
        decl["maximum"] = decl["minimum"] + draw(st.integers(0, 10**6))
    if kind == "persons":
        decl["max_items"] = draw(st.integers(1, 10_000))
    choice = draw(st.sampled_from(["plain", "required", "optional", "default"]))
    if choice in ("required", "optional"):
        decl["required"] = choice == "required"
    elif choice == "default" and kind in ("id", "code", "category", "string", "text", "int",
                                          "bool"):  # fmt: skip
        likely = {
            "int": st.integers(decl.get("minimum", 0), decl.get("maximum", 10)),
            "string": st.text(BMP, max_size=20),
            "text": st.text(BMP, max_size=20),
        }
        options = decl.get("enum") or [draw(likely.get(kind, LIKELY[kind]))]  # fmt: skip
        decl["default"] = draw(st.sampled_from(options))
    if draw(st.booleans()):
        decl["personal"] = draw(st.booleans())
    if draw(st.booleans()):
        decl["description"] = draw(st.text(BMP, max_size=20))
    return decl


@st.composite
def channel_files(draw: st.DrawFn) -> dict[str, Any]:
    kinds = {}
    for kind in draw(st.lists(STRINGS, min_size=1, max_size=4, unique=True)):
        fields = {"message_id": {"type": "id"}, "no": {"type": "id"}, "at": {"type": "timestamp"}}
        fields |= draw(st.dictionaries(FIELD_NAMES, field_decls(), max_size=6))
        kinds[kind] = {"fields": fields, "case_number": "no", "occurred_at": "at"}
    return {"channel": "demo", "timezone": draw(st.sampled_from(["Asia/Shanghai", "UTC"])),
            "kinds": kinds}  # fmt: skip


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channel_files())
def test_every_valid_channel_file_compiles_to_a_parser_with_a_json_schema(
    data: dict[str, Any],
) -> None:
    spec, _, problems = check_channel_file("demo.yaml", json.dumps(data).encode())
    assume(spec is not None and not problems)
    assert isinstance(spec, ChannelSpec)
    channel = compile_channel(spec)
    schema = channel.parser.json_schema()
    json.dumps(schema)
    assert set(channel.kinds) == set(data["kinds"])
    message = {"kind": next(iter(data["kinds"])), "message_id": "m", "no": "n", "at": AT}
    interpret("demo", json.dumps(message).encode(), IntakeContext({"demo": channel}))


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_the_shipped_parsers_have_a_json_schema(channel: str) -> None:
    schema = CHANNELS[channel].parser.json_schema()
    text = json.dumps(schema, ensure_ascii=False)
    for kind in CHANNELS[channel].kinds:
        assert f'"const": "{kind}"' in text or f'"enum": ["{kind}"]' in text


def test_an_escaped_emoji_in_an_enum_compiles_or_is_a_problem() -> None:
    text = BASE.replace("summary: {type: text}", 'mood: {type: string, enum: ["\\ud83d\\ude00"]}')
    assert '"\\ud83d\\ude00"' in text
    spec, _, problems = check_channel_file("police.yaml", text.encode())
    if not problems:
        assert spec is not None
        compile_channel(spec)


# -- what the review of the first version found ------------------------------------------------


def test_a_string_without_an_enum_is_personal_unless_declared(
    folder: Path, workflow_specs: list[WorkflowSpec]
) -> None:
    name_field = ("summary: {type: text}", "caller_name: {type: string}")
    mapped = ("attributes: {category: category}", "attributes: {category: caller_name}")
    found = problems_of(folder, workflow_specs, edited(BASE, name_field, mapped))
    assert len(found) == 1
    assert "'caller_name' is personal (string)" in found[0]
    declared = ("summary: {type: text}", "caller_name: {type: string, personal: false}")
    assert problems_of(folder, workflow_specs, edited(BASE, declared, mapped)) == []


def test_a_channel_the_workflow_never_lets_send_an_event_is_refused(
    folder: Path, workflow_specs: list[WorkflowSpec]
) -> None:
    """hotline-12345 lets only its own channel extend an order (`allowed_sources`)."""
    text = (SHIPPED / "online.yaml").read_text(encoding="utf-8")
    text = text.replace("      - type: case.withdrawn", "      - type: order.extended")
    text = text.replace("workflow: dispute-escalation", "workflow: hotline-12345")
    found = problems_of(folder, workflow_specs, text, "online")
    assert any("not let 'online' send 'order.extended'" in f for f in found), found


def test_a_required_payload_field_must_be_mapped(
    folder: Path, workflow_specs: list[WorkflowSpec]
) -> None:
    text = (SHIPPED / "hotline-12345.yaml").read_text(encoding="utf-8")
    text = text.replace("        payload: {rating: rating, reopen: reopen}\n", "")
    found = problems_of(folder, workflow_specs, text, "hotline-12345")
    assert any("requires payload field 'rating'" in f for f in found), found


@pytest.mark.parametrize("name", ["_hidden", "model_config", "copy"])
def test_field_names_the_message_model_cannot_take_are_refused(
    folder: Path, workflow_specs: list[WorkflowSpec], name: str
) -> None:
    text = edited(BASE, ("summary: {type: text}", f"{name}: {{type: text}}"))
    (problem,) = problems_of(folder, workflow_specs, text)
    assert problem.startswith("9:7: ")
    assert "cannot be a field name" in problem


def test_overlapping_conditions_refuse_the_message_instead_of_losing_an_event() -> None:
    overlapping = edited(
        BASE + OUTCOME,
        ('      - type: "mediation.{result}"\n',
         "      - {type: mediation.failed, when: message.result == 'failed'}\n"
         "      - {type: mediation.failed, when: message.result != 'succeeded'}\n"),
    )  # fmt: skip
    ctx = IntakeContext({"police": compiled(overlapping, "police")})
    message = {"kind": "outcome", "message_id": "O-1", "incident_no": "I-1", "at": AT,
               "result": "failed"}  # fmt: skip
    result = interpret("police", encode(message), ctx)
    assert result.events == []
    assert result.refused is not None
    assert "overlap" in result.refused.detail


def test_a_rule_may_read_a_time_stamp_sent_without_an_offset() -> None:
    late = edited(
        BASE + OUTCOME,
        ('      - type: "mediation.{result}"\n',
         "      - {type: mediation.failed, when: message.at.getHours() >= 18}\n"),
    )  # fmt: skip
    ctx = IntakeContext({"police": compiled(late, "police")})
    evening = {"kind": "outcome", "message_id": "O-2", "incident_no": "I-1",
               "at": "2026-03-02 20:30:00", "result": "failed"}  # 12:30 UTC  # fmt: skip
    result = interpret("police", encode(evening), ctx)
    assert result.refused is None, result.refused
    assert result.events == []  # getHours() is read in UTC, as CEL does
    morning = {**evening, "at": "2026-03-03 03:00:00"}  # 19:00 UTC the day before
    assert [e.type for e in interpret("police", encode(morning), ctx).events] == [
        "mediation.failed"
    ]
