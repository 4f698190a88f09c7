"""`fengqiao cases list|show`: the read model from a terminal (DESIGN §5, §8).

They read the database directly (`--db URL`, default `FENGQIAO_VIEW_DB`) through the same
queries as the API (consumers/view/queries.py), read-only: a reader never creates, migrates or
rebuilds a read model (that is `fengqiao view`'s job), so a missing file, a database without the
tables or with another schema version is one `error:` line and exit 2. An unknown case is exit 1.

With `--url` they ask a running view's JSON API instead, with the token in
`FENGQIAO_VIEW_TOKEN` (consumers/cli/cases_remote.py); the tables are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from consumers.cli.case_tables import case_card, case_list, entry_json, row_json
from consumers.cli.cases_remote import TOKEN_VARIABLE, ApiSource, RemoteError
from consumers.runtime.clock import WallClock
from consumers.runtime.settings import SettingsError
from consumers.runtime.variables import unknown_variable_warnings
from consumers.view.fold import CaseRow
from consumers.view.queries import (
    PAGE_MAX,
    Cursor,
    HistoryEntry,
    ListStatus,
    case_by_id,
    history_of,
    list_cases,
)
from consumers.view.settings import database_url, load_view_settings, shown_url
from consumers.view.tables import SCHEMA_VERSION, create_view_engine, schema_version

DEFAULT_LIMIT = 100


class _Refused(Exception):
    """A reason to stop with one `error:` line and this exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def open_read_model(url: sa.URL) -> sa.Engine:
    """An engine on an existing read model of this schema version, else `_Refused`."""
    shown = shown_url(url)
    if url.get_backend_name() == "sqlite" and not Path(str(url.database)).is_file():
        raise _Refused(f"no read model at {url.database} (--db, or FENGQIAO_VIEW_DB: where "
                       "`fengqiao view` writes it)")  # fmt: skip
    db = create_view_engine(url)
    try:
        version = schema_version(db)
    except sa.exc.DBAPIError as err:
        db.dispose()
        first = (str(err.orig).strip().splitlines() or [type(err.orig).__name__])[0]
        raise _Refused(f"the read model's database {shown}: {first}") from None
    if version != SCHEMA_VERSION:
        db.dispose()
        if version is None:
            raise _Refused(f"{shown} holds no read model yet (`fengqiao view` makes it)")
        raise _Refused(
            f"{shown} holds a read model of schema version {version}; this fengqiao reads "
            f"{SCHEMA_VERSION} (`fengqiao view` rebuilds it when it starts)"
        )
    return db


def _zone(name: str | None) -> tzinfo:
    if name is None:
        return WallClock().now().astimezone().tzinfo or UTC  # the machine's own, as `date`
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Refused(f"--tz {name!r} is not a time zone, e.g. Asia/Shanghai or UTC") from None


def _now(text: str | None) -> datetime:
    if text is None:
        return WallClock().now()
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        now = None
    if now is None or now.tzinfo is None:
        raise _Refused(f"--now {text!r} is not an RFC 3339 instant with an offset, e.g. "
                       "2026-06-01T09:00:00+08:00")  # fmt: skip
    return now


class _DbSource:
    """The read model's database, read directly."""

    def __init__(self, db: sa.Engine, now: datetime) -> None:
        self.db, self.now = db, now

    def cases(
        self, status: str, filters: dict[str, str | None], limit: int
    ) -> tuple[list[CaseRow], bool]:
        """Pages of the list in deadline order until `limit`; whether more are left."""
        rows: list[CaseRow] = []
        after: Cursor | None = None
        with self.db.connect() as conn:
            while len(rows) <= limit:  # one past the limit tells whether more are left
                want = min(PAGE_MAX, limit + 1 - len(rows))
                page = list_cases(conn, status, now=self.now, after=after, limit=want,  # type: ignore[arg-type]
                                  workflow=filters.get("workflow"), tier=filters.get("tier"),
                                  state=filters.get("state"))  # fmt: skip
                rows += page.rows
                if page.next is None:
                    break
                after = page.next
        return rows[:limit], len(rows) > limit

    def case(self, case_id: str) -> tuple[CaseRow | None, list[HistoryEntry]]:
        with self.db.connect() as conn:
            row = case_by_id(conn, case_id)
            return row, history_of(conn, case_id) if row is not None else []


Source = _DbSource | ApiSource


def _refusing(
    command: Callable[[argparse.Namespace, Source], int],
) -> Callable[[argparse.Namespace], int]:
    """Warnings about unknown variables, then the command on the database or (`--url`) the
    API; `_Refused` and `RemoteError` become their one line."""

    def run(args: argparse.Namespace) -> int:
        for warning in unknown_variable_warnings(os.environ):
            print(warning, file=sys.stderr)
        try:
            if args.url is not None:
                if args.db is not None or args.now is not None:
                    raise _Refused("--url asks a running view: --db and --now are for a database")
                return command(args, ApiSource(args.url, os.environ.get(TOKEN_VARIABLE)))
            try:
                settings = load_view_settings({"view_db": args.db})
            except SettingsError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            db = open_read_model(database_url(settings))
            try:
                return command(args, _DbSource(db, _now(args.now)))
            finally:
                db.dispose()
        except (_Refused, RemoteError) as refused:
            print(f"error: {refused}", file=sys.stderr)
            return refused.code
        except BrokenPipeError:  # `cases list | head`: the reader left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return run


def cmd_list(args: argparse.Namespace, source: Source) -> int:
    now, tz = _now(args.now), _zone(args.tz)
    if args.limit < 0:
        raise _Refused("--limit must be 0 (all) or more")
    filters = {"workflow": args.workflow, "tier": args.tier, "state": args.state}
    rows, more = source.cases(args.status, filters, args.limit or sys.maxsize)
    if args.json:
        json.dump([row_json(r, now) for r in rows], sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(case_list(rows, now, tz, args.status.replace("_", " ")))
    if more:
        print(f"note: more cases than --limit {args.limit}; --limit 0 lists them all",
              file=sys.stderr)  # fmt: skip
    return 0


def cmd_show(args: argparse.Namespace, source: Source) -> int:
    now, tz = _now(args.now), _zone(args.tz)
    row, history = source.case(args.case_id)
    if row is None:
        raise _Refused(f"no case {args.case_id!r} in the read model", code=1)
    if args.json:
        document: dict[str, Any] = {"case": row_json(row, now),
                                    "history": [entry_json(e) for e in history]}  # fmt: skip
        json.dump(document, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(case_card(row, history, now, tz, color=sys.stdout.isatty()))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="the read model's database URL (default FENGQIAO_VIEW_DB)")
    p.add_argument("--url", help="ask a running view's API instead, e.g. https://view.example "
                   f"(token in {TOKEN_VARIABLE})")  # fmt: skip
    p.add_argument("--json", action="store_true", help="JSON (instants in UTC) instead of a table")
    p.add_argument("--tz", help="time zone of the table's times, e.g. Asia/Shanghai "
                   "(default: this machine's)")  # fmt: skip
    p.add_argument("--now", help="judge overdue and time left at this RFC 3339 instant "
                   "(default: now)")  # fmt: skip


def add_cases_command(sub: Any) -> None:
    cases = sub.add_parser(
        "cases", help="query the read model that `fengqiao view` keeps: list cases, show one"
    )
    which = cases.add_subparsers(dest="action", required=True, metavar="{list,show}",
                                 help="list: cases by status, soonest deadline first; "
                                 "show: one case and its timeline")  # fmt: skip
    p = which.add_parser(
        "list", help="cases by status, soonest deadline first",
        description="Cases by status, soonest deadline first (those without one last).",
    )  # fmt: skip
    p.add_argument("--status", choices=get_args(ListStatus), default="open",
                   help="open (default), overdue, at_risk (warned of, not yet due), paused, "
                   "closed")  # fmt: skip
    p.add_argument("--workflow", help="only this workflow's cases")
    p.add_argument("--tier", help="only cases on this tier (rung)")
    p.add_argument("--state", help="only cases in this state")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"at most this many (default {DEFAULT_LIMIT}; 0 = all)")  # fmt: skip
    _common(p)
    p.set_defaults(func=_refusing(cmd_list))
    p = which.add_parser(
        "show", help="one case: its row and its timeline of records",
        description="One case: its row, then its timeline of records.",
    )  # fmt: skip
    p.add_argument("case_id", metavar="CASE_ID", help="the case's id")
    _common(p)
    p.set_defaults(func=_refusing(cmd_show))
