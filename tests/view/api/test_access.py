"""The token file (consumers/view/access.py): what loads, and the one-line refusals of what
does not; tokens are checked by their hash, never kept or echoed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from consumers.view.access import AccessFileError, Scope, hash_token, load_access

pytestmark = pytest.mark.unit

TOKEN = "Zt1-example-token-with-enough-entropy-4Qe"  # noqa: S105 - a test token
OTHER = "another-example-token-9fK2"

GOOD_YAML = f"""
tokens:
  - name: county-supervisor
    sha256: {hash_token(TOKEN).upper()}
  - name: township-t03
    sha256: {hash_token(OTHER)}
    workflows: [dispute-escalation, hotline-12345]
    prefix: T03
    prefix_of: attributes.township
"""


def test_a_yaml_file_gives_named_scoped_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(GOOD_YAML, encoding="utf-8")
    access = load_access(path)
    county = access.authenticate(TOKEN)
    assert county is not None
    assert county.name == "county-supervisor"
    assert county.scope.unlimited
    township = access.authenticate(OTHER)
    assert township is not None
    assert township.scope == Scope(
        frozenset({"dispute-escalation", "hotline-12345"}), "T03", "attributes.township"
    )
    assert township.scope.allows_workflow("hotline-12345")
    assert not township.scope.allows_workflow("petition")
    for wrong in ("", TOKEN + " ", TOKEN.upper(), hash_token(TOKEN)):
        assert access.authenticate(wrong) is None


def test_a_json_file_works_as_well(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    document = {"tokens": [{"name": "ops", "sha256": hash_token(TOKEN), "workflows": ["petition"]}]}
    path.write_text(json.dumps(document), encoding="utf-8")
    grant = load_access(path).authenticate(TOKEN)
    assert grant is not None
    assert grant.scope == Scope(frozenset({"petition"}))


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="no sha256sum on this machine")
def test_the_documented_shell_one_liner_makes_the_same_hash() -> None:
    made = subprocess.run(
        ["/bin/sh", "-c", 'printf %s "$T" | sha256sum'],
        env={"T": TOKEN, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert made.stdout.split()[0] == hash_token(TOKEN)


def entry(**fields: object) -> str:
    base: dict[str, object] = {"name": "a", "sha256": hash_token(TOKEN)}
    return json.dumps({"tokens": [{**base, **fields}]})


BAD = [
    ("tokens: [", "tokens.yaml:1:10: not YAML or JSON"),
    ("", "tokens.yaml: the file: Input should be a valid dictionary"),
    ("- a\n- b\n", "tokens.yaml: the file: Input should be a valid dictionary"),
    ("tokens: []", "tokens.yaml: tokens: List should have at least 1 item"),
    ("tokens:\n  - name: a\n", "tokens.yaml: tokens[0].sha256: Field required"),
    (entry(sha256=TOKEN), "tokens[0].sha256: not 64 hex digits (the SHA-256 of the token, not"),
    (entry(name="two words"), "tokens[0].name: String should match pattern"),
    (entry(scope="all"), "tokens[0].scope: Extra inputs are not permitted"),
    (entry(workflows=[]), "tokens[0].workflows: List should have at least 1 item"),
    (entry(prefix_of="case_id"), "tokens[0]: Value error, prefix_of without a prefix"),
    (entry(prefix="T", prefix_of="township"), "tokens[0].prefix_of: String should match"),
    (entry(prefix=""), "tokens[0].prefix: String should have at least 1 character"),
    (
        json.dumps(
            {
                "tokens": [
                    {"name": "a", "sha256": hash_token(TOKEN)},
                    {"name": "a", "sha256": hash_token(OTHER)},
                ]
            }
        ),
        "tokens.yaml: tokens[1]: the name 'a' is taken",
    ),
    (
        json.dumps(
            {
                "tokens": [
                    {"name": "a", "sha256": hash_token(TOKEN)},
                    {"name": "b", "sha256": hash_token(TOKEN).upper()},
                ]
            }
        ),
        "tokens.yaml: tokens[1]: the same sha256 as another token",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_file_is_refused_in_one_line_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AccessFileError) as refused:
        load_access(path)
    said = str(refused.value)
    assert said.startswith(str(path))
    assert message in said
    assert "\n" not in said
    assert TOKEN not in said  # a token pasted where its hash belongs is not echoed
    assert refused.value.__cause__ is None  # nothing for a traceback to chain


def test_an_unreadable_file_is_refused_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(
        AccessFileError, match=r"nowhere\.yaml: cannot read the token file: No such"
    ):
        load_access(missing)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00tokens")
    with pytest.raises(
        AccessFileError, match=r"binary\.yaml: cannot read the token file: not UTF-8"
    ):
        load_access(binary)
