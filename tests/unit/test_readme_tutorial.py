"""The README's channel tutorial, executed: its blocks written into a copy of `workflows/`, then
validated, and messages of both channels translated and played through the engine.

The blocks are read from the README itself (`<!-- tutorial-file: PATH -->` and
`<!-- tutorial-edit: PATH -->` before a fenced block), so the tutorial cannot drift from what
works. `tests/integration/test_tutorial_channel.py` runs the same folder on the real broker.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from consumers.cli.main import main
from engine.channel_checks import load_channels
from engine.core import Engine
from engine.intake import IntakeContext, Refused, translate
from engine.registry import WorkflowRegistry
from engine.replay import Replay

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"<!-- tutorial-(file|edit): (\S+) -->\n```yaml\n(.*?)```", re.S)
EDITED = "      - type: case.reported\n        workflow: hotline-12345\n"

REFERRAL = {"kind": "referral", "message_id": "PR-1", "referral_no": "JT-2026-007",
            "referred_at": "2026-03-02 09:00:00", "category": "wage_arrears",
            "district_code": "D03", "workers": 14, "summary": "张伟等14人被拖欠工资",
            "claimants": [{"name": "张伟", "phone": "13812345678"}]}  # fmt: skip
ORDER = {"kind": "work_order", "message_id": "HL-9", "ticket_no": "20260302-0100",
         "received_at": "2026-03-02 10:00:00", "urgency": "general",
         "category": "wage_arrears", "district_code": "D03"}  # fmt: skip


def tutorial_folder(into: Path) -> Path:
    """A copy of the shipped workflows with the tutorial's blocks applied."""
    folder = into / "workflows"
    shutil.copytree(ROOT / "workflows", folder, ignore=shutil.ignore_patterns("tests"))
    blocks = _BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [(k, p) for k, p, _ in blocks] == [
        ("file", "wage-arrears.yaml"), ("file", "channels/procuratorate.yaml"),
        ("edit", "channels/hotline-12345.yaml"),
    ]  # fmt: skip
    for kind, relative, text in blocks:
        target = folder / relative
        if kind == "file":
            target.write_text(text, encoding="utf-8")
            continue
        original = target.read_text(encoding="utf-8")
        assert original.count(EDITED) == 1
        target.write_text(original.replace(EDITED, text), encoding="utf-8")
    return folder


def test_the_tutorial_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tutorial_folder(tmp_path)
    assert main(["validate", str(folder)]) == 0
    assert "7 workflow(s) and 7 channel(s) valid" in capsys.readouterr().err


def test_the_tutorial_routes_both_channels_to_the_new_workflow(tmp_path: Path) -> None:
    folder = tutorial_folder(tmp_path)
    registry = WorkflowRegistry.load(folder)
    ctx = IntakeContext(load_channels(folder, registry.specs()), person_key_secret=b"k")
    referral = translate("procuratorate", json.dumps(REFERRAL).encode(), ctx)
    order = translate("hotline-12345", json.dumps(ORDER).encode(), ctx)
    other = translate("hotline-12345", json.dumps({**ORDER, "message_id": "HL-10",
                      "ticket_no": "T-2", "category": "housing_repair"}).encode(), ctx)  # fmt: skip
    assert not isinstance(referral, Refused)
    assert not isinstance(order, Refused)
    assert not isinstance(other, Refused)
    (opened,) = referral
    assert opened.case_id == "procuratorate:JT-2026-007"
    assert opened.payload["workflow"] == "wage-arrears"
    attributes = opened.payload["attributes"]
    assert {k: attributes[k] for k in ("category", "district", "workers")} == {
        "category": "wage_arrears", "district": "D03", "workers": 14}  # fmt: skip
    assert "张伟" not in opened.model_dump_json()
    assert "13812345678" not in opened.model_dump_json()
    assert order[0].payload["workflow"] == "wage-arrears"
    assert other[0].payload["workflow"] == "hotline-12345"

    replay = Replay(Engine(registry))
    for i, event in enumerate([*referral, *order]):
        list(replay.feed(event.model_dump_json().encode(), f"tutorial:{i}"))
    states = {case_id: case.state for case_id, case in replay.cases.items()}
    assert states == {"procuratorate:JT-2026-007": "township.mediating",
                      "hotline-12345:20260302-0100": "township.mediating"}  # fmt: skip


def test_the_shipped_folder_is_untouched_by_the_tutorial() -> None:
    """The tutorial's files are not shipped: the README teaches, the folder stays six."""
    assert not (ROOT / "workflows" / "wage-arrears.yaml").exists()
    assert not (ROOT / "workflows" / "channels" / "procuratorate.yaml").exists()
