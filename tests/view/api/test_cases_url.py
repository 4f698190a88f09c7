"""`fengqiao cases --url`: the same list and timeline through a running view's API (a real
uvicorn server), with the token from FENGQIAO_VIEW_TOKEN; refusals are one line."""

from __future__ import annotations

import json

import pytest

from consumers.cli.main import main
from consumers.view.fold import CaseRow
from consumers.view.queries import is_overdue
from tests.view.api.conftest import CALLERS, NOW
from tests.view.api.test_server import base_url

__all__ = ["base_url"]  # the fixture, served for these tests too


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_show_through_the_api(
    base_url: str, town_rows: dict[str, CaseRow], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("FENGQIAO_VIEW_TOKEN", CALLERS["county"].token)
    code, out, err = run(capsys, "cases", "list", "--url", base_url, "--status", "overdue",
                         "--limit", "0", "--json")  # fmt: skip
    assert code == 0, err
    listed = [c["case_id"] for c in json.loads(out)]
    expected = sorted((r for r in town_rows.values() if is_overdue(r, NOW)),
                      key=lambda r: (r.deadline is None, r.deadline, r.case_id))  # fmt: skip
    assert listed == [r.case_id for r in expected]
    some = listed[0]
    code, out, err = run(capsys, "cases", "show", some, "--url", base_url, "--tz", "Asia/Shanghai")
    assert code == 0, err
    assert some in out
    assert "case.transitioned" in out


def test_refusals_are_one_line(
    base_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FENGQIAO_VIEW_TOKEN", raising=False)
    code, _, err = run(capsys, "cases", "list", "--url", base_url)
    assert (code, err.strip()) == (2, "error: --url needs a token in FENGQIAO_VIEW_TOKEN")
    monkeypatch.setenv("FENGQIAO_VIEW_TOKEN", "wrong")
    code, _, err = run(capsys, "cases", "list", "--url", base_url)
    assert (code, err.strip()) == (2, "error: the view refused the token in FENGQIAO_VIEW_TOKEN")
    monkeypatch.setenv("FENGQIAO_VIEW_TOKEN", CALLERS["county"].token)
    code, _, err = run(capsys, "cases", "show", "NO-SUCH-CASE", "--url", base_url)
    assert code == 1
    assert err.count("\n") == 1
    code, _, err = run(capsys, "cases", "list", "--url", "http://127.0.0.1:9")
    assert code == 2
    assert err.startswith("error: cannot reach the view at http://127.0.0.1:9")
