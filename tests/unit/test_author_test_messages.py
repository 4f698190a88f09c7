"""`fengqiao test` steps that send a native intake message instead of a canonical event.

The message goes through the shipped channel files (`workflows/channels/`), its canonical events
through the engine: the step's case is the message's, its records those of all its events, its
time the message's arrival (the events keep the message's own time stamp). A refusal by the
channel file is expected like the engine's, and a channel that does not exist is a positioned
problem of the file, with a "did you mean".
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from consumers.cli.main import main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
PROBLEM = re.compile(r"^(?P<path>.+?):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): error: (?P<msg>\S.*)$")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["test", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


WORK_ORDER = """\
workflow: hotline-12345
scenarios:
  - name: a work order and its return
    case: hotline-12345:T-0031
    steps:
      - at: 2025-09-24T09:45:00+08:00  # arrives five minutes after the call
        message:
          channel: hotline-12345
          body: {kind: work_order, message_id: M1, ticket_no: T-0031,
                 received_at: "2025-09-24 09:40:00", urgency: general,
                 category: housing_repair, district_code: D03,
                 caller: {name: 王建国, phone: "13812345678"}}
        expect:
          events:
            - type: case.reported
              event_id: hotline-12345:M1
              case_id: hotline-12345:T-0031
              source: hotline-12345
              occurred_at: 2025-09-24T09:40:00+08:00
              payload: {workflow: hotline-12345,
                        attributes: {urgency: general, district: D03}}
          state: street.handling
          deadline: 2025-10-01T00:00:00+08:00
          records_exactly:
            - {type: case.transitioned, to_state: street.handling,
               occurred_at: 2025-09-24T09:40:00+08:00}
      - at: 2025-09-25T15:20:00+08:00
        message:
          channel: hotline-12345
          body: {kind: order_update, message_id: M2, ticket_no: T-0031,
                 at: 2025-09-25T15:20:00+08:00, action: returned, handler_code: S0307}
        expect: {events: [order.returned], state: district.dispatching, escalations: 1}
      - after: +1h  # a step without a message follows the scenario's case
        expect: {state: district.dispatching}
      - after: +0m
        message:
          channel: hotline-12345
          body: {kind: order_update, message_id: M2, ticket_no: T-0031,
                 at: 2025-09-25T15:20:00+08:00, action: returned, handler_code: S0307}
        expect: {duplicate: true, records_exactly: []}
"""


def test_a_message_step_translates_and_applies_each_event(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "x.yaml", WORK_ORDER)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed"), out


def test_all_events_of_one_message_count_for_the_step(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A report settled on the spot is two events: the step sees both and their records."""
    text = """\
workflow: dispute-escalation
version: 1
scenarios:
  - name: settled on the spot
    steps:
      - at: 2026-03-03T16:20:00+08:00
        message:
          channel: grid
          body: {kind: patrol_report, message_id: G1, report_no: R1, officer_id: G07,
                 grid_code: FQ-03-12, reported_at: "2026-03-03 16:20:00", category: parking,
                 resolved_on_spot: true}
        expect:
          events: [case.reported, {type: mediation.succeeded, event_id: "grid:G1/settled"}]
          outcome: resolved
          records_exactly:
            - {type: case.transitioned, case_id: "grid:R1", to_state: grid.mediating}
            - {type: case.transitioned, to_state: resolved}
            - {type: case.closed, resolved_tier: grid}
"""
    path = write(tmp_path, "x.yaml", text)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed"), out


def test_a_message_stamped_before_it_arrives_is_late(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The step's time is the arrival: the breach due before it fires first, then the reply
    stamped earlier is applied at the case's clock and marked late."""
    text = (
        WORK_ORDER.split("      - at: 2025-09-25", maxsplit=1)[0]
        + """\
      - at: 2025-10-01T08:00:00+08:00
        message:
          channel: hotline-12345
          body: {kind: order_update, message_id: M9, ticket_no: T-0031,
                 at: 2025-09-30T17:00:00+08:00, action: replied}
        expect:
          events: [{type: order.replied, occurred_at: 2025-09-30T17:00:00+08:00}]
          state: follow_up
          tier: district
          records:
            - {type: sla.breached, state: street.handling}
            - {type: case.transitioned, trigger: order.replied, late: true}
"""
    )
    path = write(tmp_path, "x.yaml", text)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed"), out


REFUSED = """\
workflow: hotline-12345
scenarios:
  - name: refused by the channel
    steps:
      - at: 2025-09-24T09:40:00+08:00
        message:
          channel: hotline-12345
          body: {kind: work_order, message_id: M1, ticket_no: T-0031,
                 received_at: "2025-09-24 09:40:00", urgency: whenever,
                 category: housing_repair, district_code: D03}
        expect: {refused: schema_invalid, events: [], state: null}
      - after: +1m
        message: {channel: hotline-12345, body: "{not json"}
        expect: {refused: malformed}
      - after: +1m
        message:
          channel: hotline-12345
          body: {kind: follow_up, message_id: M2, ticket_no: T-0031,
                 at: 2025-09-24T09:42:00+08:00, result: unreachable}
        expect: {refused: unknown_case, events: [followup.unreachable]}  # the engine's refusal
"""


def test_a_refused_message_is_expected_like_a_refused_event(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "x.yaml", REFUSED)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed"), out


def test_an_unexpected_refusal_of_a_message_fails_and_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = REFUSED.replace("expect: {refused: schema_invalid, events: [], state: null}", "")
    text = text.replace(
        "received_at:", "# the step has no expectation\n                 received_at:"
    )
    path = write(tmp_path, "x.yaml", text)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    assert f"  step 1 ({path}:5) at 2025-09-24T09:40:00+08:00: hotline-12345 work_order " in out
    assert "(refused by the channel)\n    refused  expected not refused\n" in out
    assert re.search(
        r"\n +actual +schema_invalid: \$\.urgency: .*\(the channel refused the message\)\n", out
    ), out
    assert "  the step emitted no records" in out


def test_events_that_differ_are_shown_field_by_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = WORK_ORDER.replace("district: D03}", "district: D04}").replace(
        "events: [order.returned]", "events: [order.returned, order.dispatched]"
    )
    path = write(tmp_path, "x.yaml", text)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    assert "hotline-12345 work_order → case.reported\n" in out
    assert "    events[0].payload.attributes.district  expected D04\n" in out
    assert re.search(r"\n +actual +D03\n", out)
    text = WORK_ORDER.replace("events: [order.returned]", "events: [order.returned, x.y]")
    path = write(tmp_path, "y.yaml", text)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert "    events  expected [order.returned, x.y]\n" in out
    assert "            actual   [order.returned]\n" in out


# -- broken files -----------------------------------------------------------------------------


def test_an_unknown_channel_is_a_positioned_error_with_a_suggestion(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path, "x.yaml", WORK_ORDER.replace("channel: hotline-12345", "channel: hotline-1234", 1)
    )
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    problem, summary = out.splitlines()
    assert summary == "0 passed, 0 failed, 1 broken file"
    assert problem == (
        f"{path}:8:20: error: unknown channel 'hotline-1234' (did you mean 'hotline-12345'?) "
        "(loaded: court, grid, hotline-12345, online, petition, police)"
    )


def test_message_steps_with_a_wrong_shape_are_refused_where_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        """\
workflow: hotline-12345
scenarios:
  - name: shapes
    steps:
      - at: 2025-09-24T09:40:00+08:00
        case: other
        message: {channel: hotline-12345, body: {kind: work_order}}
      - message: {channel: hotline-12345, body: {kind: work_order}}
        event: {type: order.replied, source: hotline-12345}
      - expect: {events: [case.reported]}
      - message: {channel: hotline-12345, body: {kind: work_order}}
        expect: {events: [{type: case.reported, case: x}]}
      - message: {channel: hotline-12345}
""",
    )
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    problems = out.splitlines()[:-1]
    assert all(PROBLEM.fullmatch(line) for line in problems), out
    assert f"{path}:5:9: error: scenarios.0.steps.0: a message names its own case" in out
    assert f"{path}:8:9: error: scenarios.0.steps.1: give event or message, not both" in out
    assert f"{path}:13:18: error: missing required key 'body' in scenarios.0.steps.4.message" in out
    # meaning is checked once the shape holds: fix the shape problems and look again
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    fixed = [*text[:5], *text[6:8], *text[9:12]]
    write(tmp_path, "x.yaml", "".join(fixed))
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    assert f"{path}:8:18: error: expect.events needs a message" in out
    assert re.search(
        rf"{re.escape(str(path))}:10:49: error: a canonical event has no field 'case'", out
    )


def test_a_folder_without_channels_knows_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = ROOT / "tests" / "fixtures" / "scenarios" / "anchored"
    path = write(
        tmp_path,
        "x.yaml",
        """\
workflow: court-mediation
scenarios:
  - name: no channels
    steps:
      - at: 2026-03-02T09:00:00+08:00
        message: {channel: court, body: {}}
""",
    )
    code, out = run(capsys, "--workflows", str(folder), str(path))
    assert code == 1
    assert f"{path}:6:28: error: unknown channel 'court' (loaded: none)" in out


def test_channels_that_do_not_load_stop_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workflows = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, workflows)
    grid = workflows / "channels" / "grid.yaml"
    grid.write_text(grid.read_text(encoding="utf-8").replace("timezone:", "time_zone:"))
    code, out = run(capsys, "--workflows", str(workflows))
    assert code == 1
    assert re.search(rf"^{re.escape(str(grid))}:\d+:\d+: error: ", out, re.M), out
    assert out.splitlines()[-1] == (
        f"error: the channels in {workflows} do not load; `fengqiao validate` says why"
    )


def test_the_message_example_in_contributing_passes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("## Testing a workflow", 1)[1].split("\n## ", 1)[0]
    example = section.split("```yaml\n")[2].split("```", 1)[0]
    path = write(tmp_path, "x.yaml", "workflow: dispute-escalation\nscenarios:\n" + example)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed"), out
