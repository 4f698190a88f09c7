"""CSV answers: any list of the API as a file a supervisor opens in a spreadsheet.

Streamed: the rows are written as they are read, one keyset page at a time for the case lists
(`pages`), so an export of a hundred thousand overdue cases holds one page in memory and no
database connection between pages.

Cells are neutralised against formula injection (OWASP "CSV injection"): a text cell that a
spreadsheet would evaluate (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a
leading `'`. Case ids and state names come from intake systems and workflow files, not from
us, and a spreadsheet must not run them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from starlette.responses import StreamingResponse

from consumers.view.queries import Cursor, Page

CSV_TYPE = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 200


def wants_csv(format_: str | None, accept: str | None) -> bool:
    """`?format=csv` decides; without it, an `Accept` header that names `text/csv`."""
    if format_ is not None:
        return format_ == "csv"
    return accept is not None and "text/csv" in accept.lower()


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The CSV text in chunks of `ROWS_PER_CHUNK` rows, the header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow([safe_cell(v) for v in row])
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(filename: str, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Any:
    """A streamed CSV download (a sync iterator: Starlette runs it in its thread pool)."""
    return StreamingResponse(
        csv_text(header, rows),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def pages(read: Callable[[Cursor | None], Page], after: Cursor | None) -> Iterator[Page]:
    """Every page of a list from `after` on, each read by `read` (its own connection)."""
    while True:
        page = read(after)
        yield page
        if page.next is None:
            return
        after = page.next
