"""The published AsyncAPI document passes the AsyncAPI project's own parser (npm
`@asyncapi/parser`), installed on first use into a cache outside the work tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PARSER_VERSION = "3.6.3"
CACHE = Path(os.environ.get("FENGQIAO_NPM_CACHE", Path.home() / ".cache" / "fengqiao")) / (
    f"asyncapi-parser-{PARSER_VERSION}"
)


@pytest.fixture(scope="session")
def asyncapi_parser() -> Path:
    modules = CACHE / "node_modules"
    if (modules / "@asyncapi" / "parser" / "package.json").exists():
        return modules
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("node and npm are needed to validate the AsyncAPI document (apt: nodejs npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(CACHE),
         f"@asyncapi/parser@{PARSER_VERSION}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return modules


def test_asyncapi_document_is_valid(asyncapi_parser: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, str(Path(__file__).with_name("validate_asyncapi.mjs")), str(asyncapi_parser),
         str(ROOT / "schemas" / "asyncapi.json")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "parsed errors=0" in result.stdout


def test_asyncapi_describes_every_topic() -> None:
    document = json.loads((ROOT / "schemas" / "asyncapi.json").read_text(encoding="utf-8"))
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {
        "fengqiao.case-events", "fengqiao.transitions", "fengqiao.case-state",
        "fengqiao.dead-letter", *(f"fengqiao.intake.{c}" for c in
                                  ("hotline-12345", "grid", "online", "petition", "police",
                                   "court")),
    }  # fmt: skip
    assert document["asyncapi"].startswith("3.")
