"""One real PostgreSQL server per test session, and a fresh database per test that asks.

Where the server comes from, first that works:
1. env `FENGQIAO_POSTGRES_URL` (`postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB`): an existing
   server; it must answer, else the session fails (it was asked for explicitly). The user must
   be allowed to create databases.
2. the project's own: `deploy/local/postgres start --dir <tmp>` (Debian's `postgresql`, installed
   with apt when missing and root), stopped and deleted at the end of the session.
If neither works, the tests that need it are skipped with the reason; they fail instead when env
`CI` is true or `FENGQIAO_REQUIRE_POSTGRES=1` (as `make test` sets).

The fixtures themselves live in tests/conftest.py, so that every folder of tests can use them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa

from consumers.view.tables import admin_statement

ROOT = Path(__file__).resolve().parent.parent
LOCAL_POSTGRES = ROOT / "deploy" / "local" / "postgres"
TRUE_VALUES = {"1", "true", "yes", "on"}
START_ATTEMPTS = 3
START_TIMEOUT = 900
"""Seconds for `start`: generous, because the first run on a fresh machine installs the package."""


@dataclass
class Server:
    url: sa.URL
    source: str
    start_seconds: float | None = None
    state_dir: str | None = None

    def describe(self) -> str:
        took = f", started in {self.start_seconds:.1f}s" if self.start_seconds else ""
        return f"postgres: {self.source} at {self.url.host}:{self.url.port}{took}"


def required() -> bool:
    ci = os.environ.get("CI", "").strip().lower() in TRUE_VALUES
    return ci or os.environ.get("FENGQIAO_REQUIRE_POSTGRES", "").strip() == "1"


def unavailable(reason: str) -> NoReturn:
    message = f"no PostgreSQL server for the tests: {reason}"
    if required():
        pytest.fail(message + "\n(CI or FENGQIAO_REQUIRE_POSTGRES=1: failing, not skipping)", False)
    pytest.skip(message)


def answers(url: sa.URL) -> str | None:
    """None if the server at `url` runs a query, else why not."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as err:
        return str(err).splitlines()[0]
    finally:
        engine.dispose()
    return None


def explicit_server() -> Server | None:
    """The server named by `FENGQIAO_POSTGRES_URL`, failing the session when it does not answer."""
    text = os.environ.get("FENGQIAO_POSTGRES_URL", "").strip()
    if not text:
        return None
    url = sa.make_url(text)
    why = answers(url)
    if why is not None:
        pytest.fail(f"FENGQIAO_POSTGRES_URL ({url!r}) does not answer: {why}", False)
    return Server(url, "FENGQIAO_POSTGRES_URL")


def _run_local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LOCAL_POSTGRES), *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


def stop_local(state_dir: str) -> None:
    try:
        _run_local("stop", "--dir", state_dir, "--clean")
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def start_local() -> Server | str:
    """A freshly started server of deploy/local/postgres, or why it could not start."""
    if not os.access(LOCAL_POSTGRES, os.X_OK):
        return f"{LOCAL_POSTGRES} is missing or not executable"
    problem = ""
    for _ in range(START_ATTEMPTS):
        state_dir = tempfile.mkdtemp(prefix="fengqiao-postgres-")
        started = time.monotonic()
        try:
            proc = _run_local("start", "--dir", state_dir)
        except subprocess.TimeoutExpired:
            stop_local(state_dir)
            return f"deploy/local/postgres start did not finish within {START_TIMEOUT}s"
        found = re.search(r"^url=(\S+)$", proc.stdout, re.MULTILINE)
        if proc.returncode == 0 and found:
            url = sa.make_url(found.group(1))
            return Server(url, "deploy/local/postgres", time.monotonic() - started, state_dir)
        stop_local(state_dir)
        tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
        problem = f"deploy/local/postgres start failed (exit {proc.returncode}):\n{tail}"
        if "port in use" not in proc.stderr:  # only a lost race for the port is worth a retry
            break
    return problem


def fresh_database(server: sa.URL, label: str) -> sa.URL:
    """A new, empty database on the server (name from `label`, made unique), for one test."""
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:30]
    name = f"fq_{slug}_{uuid.uuid4().hex[:8]}"
    admin_statement(server, f'CREATE DATABASE "{name}"')
    return server.set(database=name)


def drop_database(server: sa.URL, database: str) -> None:
    admin_statement(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
