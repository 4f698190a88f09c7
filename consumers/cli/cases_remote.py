"""`fengqiao cases --url`: the same lists and timelines through a running view's JSON API.

Why a second way in: an operator's laptop reaches the view's HTTPS address, not its database.
The token comes from `FENGQIAO_VIEW_TOKEN` (never a flag: flags end up in shell histories and
process lists), and the answers are the API's own (consumers/view/responses.py), turned back
into the rows and history entries the tables of `case_tables` print, so both ways print alike.
The view judges overdue and at risk at its own clock, so `--now` needs `--db`.

Standard library HTTP (urllib): one GET per page, no client dependency for a command line.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from consumers.view.fold import CaseRow
from consumers.view.queries import PAGE_MAX, HistoryEntry

TOKEN_VARIABLE = "FENGQIAO_VIEW_TOKEN"  # noqa: S105 - the variable's name, not a token
TIMEOUT_S = 30.0


class RemoteError(Exception):
    """What to say on the one `error:` line, and the exit code (1: no such case)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class ApiSource:
    """The cases of a view's API at `url`, seen with `token`."""

    def __init__(self, url: str, token: str | None) -> None:
        if not token:
            raise RemoteError(f"--url needs a token in {TOKEN_VARIABLE}")
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise RemoteError(f"--url {url!r} is not an http(s) address of a view")
        self.url = url.rstrip("/")
        self.token = token

    def cases(
        self, status: str, filters: Mapping[str, str | None], limit: int
    ) -> tuple[list[CaseRow], bool]:
        """Pages in deadline order until `limit`; whether more are left."""
        rows: list[CaseRow] = []
        after: str | None = None
        while len(rows) <= limit:
            query = {"status": status, "limit": str(min(PAGE_MAX, limit + 1 - len(rows)))}
            query.update({k: v for k, v in filters.items() if v})
            if after is not None:
                query["after"] = after
            page = self._get(f"/api/cases?{urllib.parse.urlencode(query)}")
            rows += [case_row(item) for item in page["items"]]
            after = page.get("next")
            if after is None:
                break
        return rows[:limit], len(rows) > limit

    def case(self, case_id: str) -> tuple[CaseRow | None, list[HistoryEntry]]:
        quoted = urllib.parse.quote(case_id, safe="")
        try:
            row = case_row(self._get(f"/api/cases/{quoted}"))
        except RemoteError as err:
            if err.code == 1:
                return None, []
            raise
        history = self._get(f"/api/cases/{quoted}/history")["items"]
        return row, [history_entry(item) for item in history]

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s)
            self.url + path,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as err:
            raise _refusal(err) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise RemoteError(f"cannot reach the view at {self.url}: {reason}") from None
        except ValueError:
            raise RemoteError(
                f"{self.url}{path.split('?', maxsplit=1)[0]} did not answer JSON"
            ) from None


def _refusal(err: urllib.error.HTTPError) -> RemoteError:
    if err.code == 404:
        return RemoteError("no such case in the view (or not in the token's scope)", code=1)
    if err.code == 401:
        return RemoteError(f"the view refused the token in {TOKEN_VARIABLE}")
    if err.code == 403:
        return RemoteError("the token's scope does not cover what was asked (403)")
    try:
        detail = json.loads(err.read()).get("detail", "")
    except (ValueError, AttributeError):
        detail = ""
    return RemoteError(f"the view answered {err.code}" + (f": {detail}" if detail else ""))


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def case_row(item: Mapping[str, Any]) -> CaseRow:
    """An API case (`CaseOut`) as the read model's row (`last_seq` is not published: 0)."""
    instants = ("opened_at", "entered_at", "updated_at", "deadline", "warning_at", "closed_at")
    fields = {name: item[name] for name in CaseRow._fields if name in item}
    fields.update({name: _instant(item.get(name)) for name in instants})
    return CaseRow(**{**fields, "last_seq": 0})


def history_entry(item: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        seq=int(item["seq"]),
        record_id=str(item["record_id"]),
        type=str(item["type"]),
        occurred_at=datetime.fromisoformat(item["occurred_at"]),
        retracted=bool(item["retracted"]),
        record=item["record"],
    )
