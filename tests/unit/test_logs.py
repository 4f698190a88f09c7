"""Logging without personal data (consumers/runtime/logs.py): the redaction processor, and the whole
configured pipeline rendering to a stream, in JSON and console form."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import pytest
import structlog
from structlog.contextvars import bound_contextvars

from consumers.runtime.logs import REDACTED, configure_logging, redact, redact_text

pytestmark = pytest.mark.unit

NAMES = ["王建国", "李秀英", "Zhang Wei"]
PHONES = ["13812345678", "+86 139 8765 4321", "150-1111-2222", "8618633334444"]
IDS = ["330681198001011234", "33068119851231567X", "33068119851231567x"]


@pytest.fixture
def reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.parametrize("text", [*PHONES, *IDS])
def test_numbers_are_masked_inside_text(text: str) -> None:
    masked = redact_text(f"来电{text}，反映漏水")
    assert masked == f"来电{REDACTED}，反映漏水"


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-02T09:30:00+08:00",  # timestamps
        "fq.case-events/3/1234567",  # a topic/partition/offset origin
        "123456789012",  # 12 digits: neither a mobile number nor an ID number
        "23812345678",  # 11 digits, but no mobile prefix
        "1381234567890123456789",  # a longer digit run
    ],
)
def test_other_numbers_are_kept(text: str) -> None:
    assert redact_text(text) == text


def test_name_fields_are_masked_at_any_depth() -> None:
    event = {
        "event": "adapter.refused",
        "name": NAMES[0],
        "caller": {"full_name": NAMES[1], "phone": PHONES[0], "姓名": NAMES[0]},
        "parties": [{"contact-name": NAMES[2]}, {"names": NAMES}],
        "note": f"联系人 {PHONES[1]} 身份证 {IDS[0]}",
        "phone_as_number": 13812345678,
        "logger_name": "fengqiao.engine",
        "count": 3,
    }
    cleaned = redact(None, "info", event)
    text = json.dumps(cleaned, ensure_ascii=False)
    assert not [s for s in [*NAMES, *PHONES, *IDS, "13812345678"] if s in text]
    assert cleaned["name"] == REDACTED
    assert cleaned["caller"]["full_name"] == REDACTED
    assert cleaned["caller"]["姓名"] == REDACTED
    assert cleaned["parties"][1]["names"] == REDACTED
    assert cleaned["phone_as_number"] == REDACTED
    # What is not personal stays readable.
    assert cleaned["event"] == "adapter.refused"
    assert cleaned["logger_name"] == "fengqiao.engine"
    assert cleaned["count"] == 3


@pytest.mark.usefixtures("reset")
@pytest.mark.parametrize("as_json", [True, False])
def test_the_configured_pipeline_redacts_context_fields_and_tracebacks(as_json: bool) -> None:
    out = io.StringIO()
    configure_logging(file=out, json=as_json)
    log = structlog.get_logger(f"test-{as_json}")
    with bound_contextvars(topic="fq.case-events", partition=2, offset=41, workflow="petition"):
        log.info("event.rejected", reason="schema_invalid", caller={"name": NAMES[0]})
        try:
            raise ValueError(f"bad phone {PHONES[0]} of {IDS[1]}")
        except ValueError:
            log.exception("adapter.failed")
    text = out.getvalue()
    assert not [s for s in [*NAMES, PHONES[0], IDS[1]] if s in text], text
    assert "ValueError: bad phone [redacted] of [redacted]" in text
    assert "event.rejected" in text
    if as_json:
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        first = lines[0]
        assert first["event"] == "event.rejected"
        assert (first["topic"], first["partition"], first["offset"]) == ("fq.case-events", 2, 41)
        assert first["workflow"] == "petition"
        assert first["level"] == "info"
    else:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", text)  # colours on a terminal
        assert "partition=2" in plain
        assert "workflow=petition" in plain


@pytest.mark.usefixtures("reset")
def test_json_is_chosen_unless_the_stream_is_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, terminal = io.StringIO(), Terminal()
    configure_logging(file=piped)
    structlog.get_logger("piped").info("service.started", port=9464)
    configure_logging(file=terminal)
    structlog.get_logger("terminal").info("service.started", port=9464)
    assert json.loads(piped.getvalue())["port"] == 9464
    assert "service.started" in terminal.getvalue()
    assert not terminal.getvalue().lstrip().startswith("{")
