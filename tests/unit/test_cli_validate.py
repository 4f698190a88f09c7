"""`fengqiao validate`: exit codes and one `PATH:LINE:COL: error: MESSAGE` line per problem."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from consumers.cli.main import main
from engine.validate import check_file

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "fixtures" / "broken"
MINIMAL = ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml"
WORKFLOWS = ROOT / "workflows"

LINE = re.compile(r"^(?P<path>.+?):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): error: (?P<msg>\S.*)$")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_shipped_workflows_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(WORKFLOWS))
    assert code == 0
    assert out == ""
    count = len(list(WORKFLOWS.glob("*.yaml")))
    channels = len(list((WORKFLOWS / "channels").glob("*.yaml")))
    assert err == f"ok: {count} workflow(s) and {channels} channel(s) valid in {WORKFLOWS}/\n"


def test_default_is_the_workflows_folder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys)
    assert code == 0
    assert out == ""
    assert err.startswith("ok: ")


def test_minimal_file_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, str(MINIMAL)) == (0, "", f"ok: 1 workflow(s) valid in {MINIMAL}\n")


def test_broken_folder_prints_one_line_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(BROKEN))
    assert code == 1
    assert err == ""
    lines = out.splitlines()
    assert out.endswith("\n")
    bad = [line for line in lines if not LINE.fullmatch(line)]
    assert bad == []
    per_file = Counter(m["path"] for m in (LINE.fullmatch(line) for line in lines) if m)
    expected = {
        str(path): len(check_file(str(path), path.read_bytes())[1])
        for path in sorted(BROKEN.iterdir())
    }
    assert dict(per_file) == expected
    assert all(n >= 1 for n in expected.values())


def test_broken_file_line_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    path = BROKEN / "unknown-tier.yaml"
    code, out, _ = run(capsys, str(path))
    assert code == 1
    assert out == f"{path}:8:11: error: state 'open': unknown tier 'village'\n"


def test_lines_are_sorted_by_file_then_position(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, str(BROKEN / "two-problems.yaml"), str(BROKEN / "duplicate-key.yaml"))
    keys = []
    for line in out.splitlines():
        m = LINE.fullmatch(line)
        assert m is not None
        keys.append((m["path"], int(m["line"]), int(m["col"])))
    assert keys == sorted(keys)
    assert len(keys) == 3


def test_missing_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = run(capsys, str(missing))
    assert code == 1
    assert out == f"{missing}:1:1: error: no such file or directory\n"
    assert err == ""


def test_missing_path_fails_even_beside_a_valid_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope"
    code, out, _ = run(capsys, str(MINIMAL), str(missing))
    assert code == 1
    assert out == f"{missing}:1:1: error: no such file or directory\n"


def test_same_name_and_version_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copy(MINIMAL, tmp_path / "a.yaml")
    shutil.copy(MINIMAL, tmp_path / "b.yml")
    (tmp_path / "notes.txt").write_text("not a workflow: ignored\n")
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 1
    assert out == f"{tmp_path / 'b.yml'}:1:1: error: minimal@1 is already defined in " + (
        f"{tmp_path / 'a.yaml'}\n"
    )


def test_unreadable_path_is_a_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "folder.yaml"  # a folder named like a file, given inside a folder
    folder.mkdir()
    (folder / "inner.yaml").mkdir()
    code, out, _ = run(capsys, str(folder))
    assert code == 1
    assert len(out.splitlines()) == 1
    assert out.startswith(f"{folder / 'inner.yaml'}:1:1: error: cannot read file: ")
