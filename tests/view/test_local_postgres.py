"""deploy/local/postgres: the PostgreSQL server the suite starts for itself (and anyone locally)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.postgres_server import LOCAL_POSTGRES, ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LOCAL_POSTGRES), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.unit
def test_no_server_binaries_and_not_root_is_one_error_line(tmp_path: Path) -> None:
    """Without root nothing can be installed: one `error:` line says what to do."""
    command = [str(LOCAL_POSTGRES), "start", "--dir", str(tmp_path / "pg")]
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot try as another user")
        command = ["runuser", "-u", "nobody", "--", *command]
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "FENGQIAO_POSTGRES_ROOT": str(tmp_path / "nothing-here")},
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("postgres: error: no PostgreSQL server binaries in ")
    assert "apt-get install postgresql" in line


@pytest.mark.integration
@pytest.mark.timeout(900)  # may install Debian's postgresql first
def test_start_restart_and_stop() -> None:
    """`start` prints only the URL, a restart keeps the data and the URL, `stop --clean` removes
    the state dir; a second `start` on a running dir is refused. (The state dir is made under
    the system's temporary folder: as root, the server's own user must be able to reach it,
    and pytest's `tmp_path` is closed to other users.)"""
    state = Path(tempfile.mkdtemp(prefix="fengqiao-postgres-test-"))
    first = run("start", "--dir", str(state))
    assert first.returncode == 0, first.stderr
    found = re.fullmatch(r"url=(postgresql\+psycopg://\S+)\n", first.stdout)
    assert found, first.stdout
    url = sa.make_url(found.group(1))
    assert (url.host, url.database) == ("127.0.0.1", "fengqiao")
    try:
        db = sa.create_engine(url)
        with db.begin() as conn:
            conn.execute(sa.text("CREATE TABLE kept (n integer)"))
            conn.execute(sa.text("INSERT INTO kept VALUES (42)"))
        db.dispose()
        refused = run("start", "--dir", str(state))
        assert refused.returncode == 1
        assert "already running" in refused.stderr
        assert run("stop", "--dir", str(state)).returncode == 0
        again = run("start", "--dir", str(state))
        assert again.returncode == 0, again.stderr
        assert again.stdout == first.stdout
        db = sa.create_engine(url)
        with db.connect() as conn:
            assert conn.scalar(sa.text("SELECT n FROM kept")) == 42
        db.dispose()
    finally:
        stopped = run("stop", "--dir", str(state), "--clean")
        shutil.rmtree(state, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stderr
    assert "removed" in stopped.stderr


def _session_without_a_server(require: bool, fake_root: Path) -> subprocess.CompletedProcess[str]:
    """A pytest session running one PostgreSQL test, whose server cannot start: its binaries are
    stubs that fail (so nothing is installed either, root or not)."""
    bin_dir = fake_root / "15" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("initdb", "pg_ctl", "postgres"):
        (bin_dir / tool).write_text("#!/bin/sh\necho stub >&2\nexit 1\n", encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    drop = ("CI", "FENGQIAO_POSTGRES_URL", "FENGQIAO_REQUIRE_POSTGRES")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["FENGQIAO_POSTGRES_ROOT"] = str(fake_root)
    if require:
        env["FENGQIAO_REQUIRE_POSTGRES"] = "1"
    test = "tests/view/test_projection.py::test_a_batch_fed_again_changes_nothing[postgresql]"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.unit
@pytest.mark.parametrize("require", [False, True])
def test_a_server_that_cannot_start_skips_unless_required(require: bool, tmp_path: Path) -> None:
    proc = _session_without_a_server(require, tmp_path / "postgresql")
    summary = proc.stdout.strip().splitlines()[-1]
    assert "deploy/local/postgres start failed" in proc.stdout
    if require:
        assert proc.returncode == 1, proc.stdout
        assert "1 error" in summary, summary
        assert "FENGQIAO_REQUIRE_POSTGRES=1: failing, not skipping" in proc.stdout
    else:
        assert proc.returncode == 0, proc.stdout
        assert "1 skipped" in summary, summary
