"""structlog configuration: JSON lines when not on a terminal, readable console output on one.

Log events are constant strings with key-value context, never f-strings, and carry no case id or
personal data (DESIGN §7). The engine loop binds where each input came from (topic, partition,
offset, workflow) with `structlog.contextvars`, so every line logged while handling a message
says which message it was about — without naming the case.

Personal data has no business in a log, but a value can still carry some by accident (an
exception message quoting its input, a field copied from a payload). `redact` is the last line
of defence, run on every event dict just before rendering: it masks Chinese mobile numbers,
18-digit resident ID numbers and the values of name fields, wherever they sit (nested dicts,
lists, exception text). Free-text names cannot be recognised by a pattern: code must simply not
log free text from inputs.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"

ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dXx])")
"""Resident identity card numbers (GB 11643): 17 digits and a check digit (0-9 or X)."""

MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
"""Mainland mobile numbers, 1[3-9] + 9 digits, also written +86 138 1234 5678 or 138-1234-5678."""

NAME_KEY = re.compile(r"(?i)^(?:.*[_-])?(?:full)?names?$|姓名|名字|联系人|当事人|申请人|来访人")
"""Keys whose value is a person's name: name, names, *_name, full_name, 姓名, 联系人 …"""

_NOT_NAMES = frozenset({
    "logger_name", "func_name", "thread_name", "process_name", "module_name", "file_name",
    "topic_name", "workflow_name",
})  # fmt: skip
"""Keys that look like name fields but name code or configuration (structlog's callsite keys)."""

_MAX_DEPTH = 8


def redact_text(text: str) -> str:
    """The text with ID numbers and mobile numbers masked (ID numbers first: they contain
    digit runs that look like phone numbers)."""
    return MOBILE.sub(REDACTED, ID_NUMBER.sub(REDACTED, text))


def _is_name_key(key: object) -> bool:
    return isinstance(key, str) and key not in _NOT_NAMES and NAME_KEY.search(key) is not None


def _clean(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str | bytes | bytearray):
        text = value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
        return redact_text(text)
    if isinstance(value, bool) or depth > _MAX_DEPTH:
        return value
    if isinstance(value, int):
        # An int can be a phone number too (a JSON number); an offset that happens to look like
        # one is masked as well: better an unreadable offset than a leaked number.
        return REDACTED if redact_text(str(value)) != str(value) else value
    if isinstance(value, Mapping):
        return {
            _clean(k, depth + 1): REDACTED if _is_name_key(k) else _clean(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, depth + 1) for v in value]
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask personal data anywhere in the event dict (see module doc).

    Values of other types (exceptions, objects) are left to the renderer; put
    `format_exc_info` before this processor so a traceback is text by the time it gets here.
    """
    cleaned: EventDict = {}
    for key, value in event_dict.items():
        cleaned[key] = REDACTED if _is_name_key(key) else _clean(value)
    return cleaned


def processors(*, json: bool) -> list[Processor]:
    """The processor chain: context, level, time, exception text, redaction, rendering."""
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks become plain text *before* redaction (no pretty printer with local
        # variables: they could hold a payload).
        structlog.processors.format_exc_info,
        redact,
        renderer,
    ]


def configure_logging(
    level: int = logging.INFO, *, file: TextIO | None = None, json: bool | None = None
) -> None:
    """Configure structlog once per process: JSON lines unless `file` (stderr) is a terminal."""
    out = file or sys.stderr
    as_json = not out.isatty() if json is None else json
    structlog.configure(
        processors=processors(json=as_json),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
