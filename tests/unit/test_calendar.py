"""BusinessCalendar: package data, year overrides, and strict validation of override files.

Facts about 2025/2026 come from chinesecalendar 1.11.0 (checked against its tables). Year 2099
is a FICTIONAL fixture that exists only in these tests: it stands for "a year the package does
not know", so no real holiday arrangement is invented here.
"""

from __future__ import annotations

import pickle
from datetime import date, datetime
from pathlib import Path

import pytest

from engine.calendar import MAX_FILE_BYTES, BusinessCalendar, CalendarFileError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CAL = BusinessCalendar.chinese()

FICTIONAL_2099 = """\
# FICTIONAL test data: not an official arrangement.
year: 2099
source: "test fixture, invented"
holidays:
  - 2099-01-01
  - {from: 2099-02-09, to: 2099-02-15, name: Fictional Festival}
workdays:
  - 2099-02-07
  - "2099-02-21"
"""


def write(tmp_path: Path, text: str, name: str = "cn-2099.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- package data -------------------------------------------------------------------------


def test_package_years_are_exactly_those_the_package_supports() -> None:
    assert CAL.covered_years == frozenset(range(2004, 2027))
    assert CAL.covers(2025)
    assert CAL.covers(2026)
    assert not CAL.covers(2003)
    assert not CAL.covers(2027)


def test_every_listed_date_lies_in_a_covered_year() -> None:
    assert all(CAL.covers(d.year) for d in CAL.holidays | CAL.workdays)
    assert not CAL.holidays & CAL.workdays


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 9, 26), True),  # Friday
        (date(2025, 9, 27), False),  # ordinary Saturday
        (date(2025, 9, 28), True),  # Sunday made a working day (调休) for National Day
        (date(2025, 10, 1), False),  # National Day
        (date(2025, 10, 4), False),  # weekend inside the holiday
        (date(2025, 10, 8), False),  # last day of the 2025 National Day holiday
        (date(2025, 10, 9), True),  # first working day after it
        (date(2025, 10, 11), True),  # Saturday made a working day
        (date(2026, 2, 14), True),  # Saturday before Spring Festival 2026, working
        (date(2026, 2, 15), False),  # Spring Festival 2026 holiday starts (Sunday)
        (date(2026, 2, 16), False),
        (date(2026, 2, 23), False),  # Monday, still holiday
        (date(2026, 2, 24), True),
        (date(2026, 2, 28), True),  # make-up Saturday
        (date(2026, 12, 31), True),  # last covered day, an ordinary Thursday
    ],
)
def test_known_days(day: date, working: bool) -> None:
    assert CAL.is_working_day(day) is working


def test_uncovered_year_falls_back_to_monday_to_friday() -> None:
    # 2027-01-01 is a Friday; without official data it is (best effort) a working day.
    assert not CAL.covers(2027)
    assert CAL.is_working_day(date(2027, 1, 1))
    assert not CAL.is_working_day(date(2027, 1, 2))
    assert not CAL.is_working_day(date(2027, 1, 3))


def test_datetime_is_refused_because_it_would_never_match() -> None:
    with pytest.raises(TypeError, match="not a datetime"):
        CAL.is_working_day(datetime(2025, 10, 1, 12))


def test_invariants_are_enforced() -> None:
    with pytest.raises(ValueError, match="not covered"):
        BusinessCalendar(holidays=frozenset({date(2099, 1, 1)}))
    with pytest.raises(ValueError, match="both holiday and workday"):
        BusinessCalendar(
            holidays=frozenset({date(2099, 2, 7)}),
            workdays=frozenset({date(2099, 2, 7)}),
            covered_years=frozenset({2099}),
        )
    with pytest.raises(TypeError, match=r"datetime\.date"):
        BusinessCalendar(
            holidays=frozenset({datetime(2099, 1, 1)}), covered_years=frozenset({2099})
        )


def test_merged_replaces_whole_years_only() -> None:
    empty_2025 = BusinessCalendar(covered_years=frozenset({2025}))
    merged = CAL.merged(empty_2025)
    assert merged.is_working_day(date(2025, 10, 1))  # a Wednesday, holiday data replaced
    assert not merged.is_working_day(date(2025, 9, 28))  # make-up Sunday gone with it
    assert not merged.is_working_day(date(2026, 10, 1))  # other years untouched
    assert merged.covered_years == CAL.covered_years


# -- override files -----------------------------------------------------------------------


def test_from_file_reads_dates_ranges_and_quoted_dates(tmp_path: Path) -> None:
    cal = BusinessCalendar.from_file(write(tmp_path, FICTIONAL_2099))
    assert cal.covered_years == frozenset({2099})
    assert cal.holidays == frozenset({date(2099, 1, 1)} | {date(2099, 2, d) for d in range(9, 16)})
    assert cal.workdays == frozenset({date(2099, 2, 7), date(2099, 2, 21)})
    assert not cal.is_working_day(date(2099, 1, 1))  # Thursday, holiday
    assert cal.is_working_day(date(2099, 2, 7))  # Saturday, make-up
    assert not cal.is_working_day(date(2099, 2, 8))  # ordinary Sunday


def test_workdays_key_is_optional_and_holidays_may_be_empty(tmp_path: Path) -> None:
    cal = BusinessCalendar.from_file(write(tmp_path, "year: 2099\nholidays: []\n"))
    assert cal.covers(2099)
    assert cal.is_working_day(date(2099, 1, 1))


def test_chinese_merges_override_directory(tmp_path: Path) -> None:
    write(tmp_path, FICTIONAL_2099)
    cal = BusinessCalendar.chinese(tmp_path)
    assert cal.covers(2099)
    assert cal.covers(2025)
    assert not cal.is_working_day(date(2099, 2, 10))
    assert not cal.is_working_day(date(2025, 10, 1))


def test_later_file_by_name_replaces_the_year(tmp_path: Path) -> None:
    write(tmp_path, FICTIONAL_2099, name="a-2099.yaml")
    write(tmp_path, "year: 2099\nholidays: [2099-03-02]\n", name="b-2099-correction.yaml")
    cal = BusinessCalendar.chinese(tmp_path)
    assert cal.is_working_day(date(2099, 1, 1))
    assert not cal.is_working_day(date(2099, 3, 2))


def test_override_can_correct_a_package_year(tmp_path: Path) -> None:
    write(tmp_path, "year: 2025\nholidays: [2025-03-03]\n", name="cn-2025.yaml")
    cal = BusinessCalendar.chinese(tmp_path)
    assert not cal.is_working_day(date(2025, 3, 3))
    assert cal.is_working_day(date(2025, 10, 1))  # the whole year was replaced


def test_missing_override_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        BusinessCalendar.chinese(tmp_path / "nope")


def test_yml_extension_is_refused_rather_than_skipped(tmp_path: Path) -> None:
    write(tmp_path, FICTIONAL_2099, name="cn-2099.yml")
    with pytest.raises(CalendarFileError, match=r"must end in \.yaml"):
        BusinessCalendar.chinese(tmp_path)


def test_shipped_calendar_directory_loads() -> None:
    shipped = REPO / "workflows" / "calendars"
    cal = BusinessCalendar.chinese(shipped)
    assert cal.covered_years >= CAL.covered_years


def test_error_format_and_pickling() -> None:
    err = CalendarFileError("cal/cn-2099.yaml", 3, 5, "bad date")
    assert str(err) == "cal/cn-2099.yaml:3:5: error: bad date"
    assert (err.path, err.line, err.col, err.message) == ("cal/cn-2099.yaml", 3, 5, "bad date")
    again = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object
    assert str(again) == str(err)


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("", 1, 1, "file is empty"),
        ("- 2099-01-01\n", 1, 1, "must be a mapping"),
        ("holidays: []\n", 1, 1, "missing required key 'year'"),
        ("year: 2099\n", 1, 1, "missing required key 'holidays'"),
        ("year: '2099'\nholidays: []\n", 1, 7, "year must be an integer"),
        ("year: true\nholidays: []\n", 1, 7, "year must be an integer"),
        ("year: 2099\nholidays: []\nnotes: x\n", 3, 1, "unknown key 'notes'"),
        ("year: 2099\nyear: 2098\nholidays: []\n", 2, 1, "duplicate key 'year'"),
        ("year: 2099\nholidays: 2099-01-01\n", 2, 11, "holidays must be a list"),
        ("year: 2099\nholidays:\n  - 2098-12-31\n", 3, 5, "not in year 2099"),
        ("year: 2099\nholidays:\n  - 2099-02-30\n", 3, 5, "invalid date"),
        ("year: 2099\nholidays:\n  - '2099-02-30'\n", 3, 5, "invalid date"),
        ("year: 2099\nholidays:\n  - 2099-01-01 10:00:00\n", 3, 5, "expected a date"),
        ("year: 2099\nholidays:\n  - 1 Jan 2099\n", 3, 5, "expected a date"),
        ("year: 2099\nholidays:\n  - [2099-01-01]\n", 3, 5, "must be a single value"),
        (
            "year: 2099\nholidays:\n  - {from: 2099-02-15, to: 2099-02-09}\n",
            3,
            5,
            "ends (2099-02-09) before it starts (2099-02-15)",
        ),
        ("year: 2099\nholidays:\n  - {from: 2099-02-09}\n", 3, 5, "needs 'to'"),
        (
            "year: 2099\nholidays:\n  - {from: 2099-02-09, to: 2099-02-10, days: 2}\n",
            3,
            40,
            "unknown key 'days' in holiday range",
        ),
        (
            "year: 2099\nholidays:\n  - {from: 2099-02-09, to: 2099-02-10, name: 5}\n",
            3,
            46,
            "name must be a string",
        ),
        (
            "year: 2099\nholidays:\n  - {from: 2099-02-09, to: 2099-02-12}\n  - 2099-02-10\n",
            4,
            5,
            "listed more than once",
        ),
        (
            "year: 2099\nholidays: [2099-02-07]\nworkdays: [2099-02-07]\n",
            3,
            12,
            "both holiday and workday",
        ),
        ("year: 2099\nholidays: []\nworkdays: [2099-01-01]\n", 3, 12, "only Sat/Sun"),
        ("year: 2099\nholidays: []\nworkdays:\n  - {from: 2099-02-07}\n", 4, 5, "single value"),
        ("year: 2099\nholidays: [\n", 3, 1, "YAML syntax error"),
        ("year: 2099\nholidays: []\n---\nyear: 2098\n", 3, 1, "YAML syntax error"),
        (
            "year: 2099\nholidays:\n  - !!python/object/apply:os.system ['true']\n",
            3,
            5,
            "single value",
        ),
        ("year: 2099\nholidays:\n  - !!python/name:os.system\n", 3, 5, "invalid date"),
    ],
)
def test_invalid_files_point_at_the_problem(
    tmp_path: Path, text: str, line: int, col: int, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CalendarFileError) as caught:
        BusinessCalendar.from_file(path)
    err = caught.value
    assert message in err.message
    assert (err.line, err.col) == (line, col), str(err)
    assert err.path == str(path)
    assert str(err).startswith(f"{path}:{line}:{col}: error: ")


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cn-2099.yaml"
    path.write_bytes("year: 2099\nholidays: [] # 春节\n".encode("gbk"))
    with pytest.raises(CalendarFileError, match="not UTF-8"):
        BusinessCalendar.from_file(path)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "year: 2099\nholidays: []\n" + "#" * MAX_FILE_BYTES)
    with pytest.raises(CalendarFileError, match="larger than"):
        BusinessCalendar.from_file(path)


def test_aliases_cannot_amplify_a_file(tmp_path: Path) -> None:
    # Lists are never nested and every date may appear once, so a repeated alias is an error
    # at once instead of an expansion.
    text = "year: 2099\nholidays:\n  - &r {from: 2099-02-09, to: 2099-02-15}\n  - *r\n"
    with pytest.raises(CalendarFileError, match="listed more than once"):
        BusinessCalendar.from_file(write(tmp_path, text))
