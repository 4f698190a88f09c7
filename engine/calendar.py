"""Which days are working days in mainland China, as data that can be updated without a release.

Why a calendar of our own: procedural limits (Civil Procedure Law art. 85) roll over public
holidays and count make-up working days (调休), and the State Council publishes each year's
arrangement only weeks before the year starts. The `chinesecalendar` package carries the known
years; a YAML override file per year (see workflows/calendars/README.md) adds or corrects a year
as soon as the official notice appears, without waiting for a new package. For a year that
nobody has data for we fall back to Mon–Fri, and `covers()` lets callers flag such results
instead of silently trusting them.

The only I/O here is the explicit file loader (`from_file`, and `chinese` which calls it).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 100_000
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOP_KEYS = ("year", "holidays", "workdays", "source")
_RANGE_KEYS = ("from", "to", "name")
_SATURDAY = 5


class CalendarFileError(Exception):
    """A calendar override file was refused; points at the offending line and column (1-based).

    Deadlines computed from a half-understood holiday file would be silently wrong, so every
    doubt is an error, reported in the same `PATH:LINE:COL: error: MESSAGE` shape as other
    input files so editors and CI can annotate it.
    """

    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        super().__init__(path, line, col, message)
        self.path = path
        self.line = line
        self.col = col
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: error: {self.message}"


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Public holidays and make-up working days, with the years for which they are known.

    `holidays` may include weekend days inside a holiday period (harmless: they are days off
    anyway). `workdays` are Saturdays/Sundays declared working days. Every listed date must lie
    in a covered year, so "not listed" in a covered year reliably means "ordinary day".
    """

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    covered_years: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for d in self.holidays | self.workdays:
            if type(d) is not date:
                raise TypeError(f"calendar entries must be datetime.date, got {d!r}")
            if d.year not in self.covered_years:
                raise ValueError(f"{d} is listed but year {d.year} is not covered")
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"dates both holiday and workday: {sorted(both)}")

    def covers(self, year: int) -> bool:
        """Whether official data is known for `year` (else `is_working_day` is a guess)."""
        return year in self.covered_years

    def is_working_day(self, d: date) -> bool:
        """Working day per the official arrangement; Mon–Fri best effort for uncovered years."""
        if isinstance(d, datetime):
            # datetime is a date subclass that never equals a date: lookups would silently miss.
            raise TypeError("is_working_day takes a date, not a datetime")
        if d in self.holidays:
            return False
        return d.weekday() < _SATURDAY or d in self.workdays

    def merged(self, other: BusinessCalendar) -> BusinessCalendar:
        """This calendar with `other`'s covered years replaced wholesale by `other`'s data.

        Whole-year replacement (not a union of dates) is what lets an override file *correct*
        a year: a date dropped from the official notice must disappear too.
        """
        replaced = other.covered_years
        return BusinessCalendar(
            holidays=frozenset(d for d in self.holidays if d.year not in replaced) | other.holidays,
            workdays=frozenset(d for d in self.workdays if d.year not in replaced) | other.workdays,
            covered_years=self.covered_years | other.covered_years,
        )

    @classmethod
    def chinese(cls, override_dir: Path | None = None) -> BusinessCalendar:
        """The `chinesecalendar` package's data, then every `*.yaml` in `override_dir` by name.

        Later files win for the years they declare. A missing directory is an error, not
        "no overrides": a mistyped path must not quietly drop a year's holidays.
        """
        result = _package_calendar()
        if override_dir is None:
            return result
        if not override_dir.is_dir():
            raise NotADirectoryError(f"calendar override directory not found: {override_dir}")
        strays = sorted(override_dir.glob("*.yml"))
        if strays:
            # Silently skipping a misnamed file would silently drop a year's holidays.
            raise CalendarFileError(str(strays[0]), 1, 1, "calendar files must end in .yaml")
        for path in sorted(override_dir.glob("*.yaml"), key=lambda p: p.name):
            result = result.merged(cls.from_file(path))
        return result

    @classmethod
    def from_file(cls, path: Path) -> BusinessCalendar:
        """Load and strictly validate one override file covering exactly one year."""
        name = str(path)
        raw = path.read_bytes()
        if len(raw) > MAX_FILE_BYTES:
            raise CalendarFileError(name, 1, 1, f"file is larger than {MAX_FILE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CalendarFileError(name, 1, 1, "file is not UTF-8 text") from err
        return _Parser(name).parse(text)


@cache
def _package_calendar() -> BusinessCalendar:
    """Read `chinesecalendar`'s tables; covered years confirmed by the package's own check.

    The package has no version-stable "supported years" API: it derives the range from its
    data and raises NotImplementedError outside it. So candidate years come from the data and
    each is confirmed by asking the package, which stays right if its rule ever changes.
    """
    package: Any = importlib.import_module("chinese_calendar")
    constants: Any = importlib.import_module("chinese_calendar.constants")
    holidays: set[date] = set(constants.holidays)
    workdays: set[date] = set(constants.workdays)
    listed = {d.year for d in holidays | workdays}
    covered: set[int] = set()
    for year in range(min(listed), max(listed) + 1):
        try:
            package.is_workday(date(year, 7, 1))
        except NotImplementedError:
            continue
        covered.add(year)
    return BusinessCalendar(
        holidays=frozenset(d for d in holidays if d.year in covered),
        workdays=frozenset(d for d in workdays if d.year in covered),
        covered_years=frozenset(covered),
    )


class _Parser:
    """Walks composed YAML nodes (not plain data) so every error can name a line and column."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, node: yaml.Node | None, message: str) -> CalendarFileError:
        if node is None:
            return CalendarFileError(self.path, 1, 1, message)
        mark = node.start_mark
        return CalendarFileError(self.path, mark.line + 1, mark.column + 1, message)

    def parse(self, text: str) -> BusinessCalendar:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            message = f"YAML syntax error: {err.problem or err.context}"
            raise CalendarFileError(self.path, line, col, message) from err
        except yaml.YAMLError as err:
            raise CalendarFileError(self.path, 1, 1, f"YAML error: {err}") from err
        finally:
            loader.dispose()
        if root is None:
            raise self.error(None, "file is empty; expected keys year and holidays")
        fields = self.mapping(root, _TOP_KEYS, "calendar file")
        if "year" not in fields:
            raise self.error(root, "missing required key 'year'")
        if "holidays" not in fields:
            raise self.error(root, "missing required key 'holidays' (use [] if truly none)")
        year = self.parse_year(fields["year"])
        if "source" in fields:
            self.string(fields["source"], "source")
        holidays = self.parse_holidays(fields["holidays"], year)
        workdays = self.parse_workdays(fields.get("workdays"), year, holidays)
        return BusinessCalendar(
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
            covered_years=frozenset({year}),
        )

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, f"{what} must be a single value")
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as err:
            raise self.error(node, f"invalid {what} {node.value!r}: {err}") from err

    def mapping(self, node: yaml.Node, allowed: tuple[str, ...], what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping with keys {', '.join(allowed)}")
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, "key")
            if key not in allowed:
                raise self.error(
                    key_node, f"unknown key {key!r} in {what}; allowed: {', '.join(allowed)}"
                )
            if key in result:
                raise self.error(key_node, f"duplicate key {key!r}")
            result[key] = value_node
        return result

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what} must be a list")
        items: list[yaml.Node] = node.value
        return items

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node, what)
        if not isinstance(value, str):
            raise self.error(node, f"{what} must be a string (quote it)")
        return value

    def parse_year(self, node: yaml.Node) -> int:
        value = self.scalar(node, "year")
        if type(value) is not int or not 1 <= value <= 9999:
            raise self.error(node, f"year must be an integer such as 2027, got {node.value!r}")
        return value

    def parse_date(self, node: yaml.Node, year: int) -> date:
        value = self.scalar(node, "date")
        if isinstance(value, str) and _ISO_DATE.match(value):
            try:
                value = date.fromisoformat(value)
            except ValueError as err:
                raise self.error(node, f"invalid date {value!r}: {err}") from err
        if isinstance(value, datetime) or not isinstance(value, date):
            raise self.error(node, f"expected a date YYYY-MM-DD, got {node.value!r}")
        if value.year != year:
            raise self.error(node, f"date {value} is not in year {year}")
        return value

    def parse_holidays(self, node: yaml.Node, year: int) -> dict[date, yaml.Node]:
        found: dict[date, yaml.Node] = {}
        for item in self.sequence(node, "holidays"):
            for day in self.parse_holiday_item(item, year):
                if day in found:
                    raise self.error(item, f"holiday {day} is listed more than once")
                found[day] = item
        return found

    def parse_holiday_item(self, node: yaml.Node, year: int) -> list[date]:
        if not isinstance(node, yaml.MappingNode):
            return [self.parse_date(node, year)]
        fields = self.mapping(node, _RANGE_KEYS, "holiday range")
        for required in ("from", "to"):
            if required not in fields:
                raise self.error(node, f"holiday range needs '{required}'")
        if "name" in fields:
            self.string(fields["name"], "name")
        first = self.parse_date(fields["from"], year)
        last = self.parse_date(fields["to"], year)
        if first > last:
            raise self.error(node, f"holiday range ends ({last}) before it starts ({first})")
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def parse_workdays(
        self, node: yaml.Node | None, year: int, holidays: dict[date, yaml.Node]
    ) -> set[date]:
        found: set[date] = set()
        if node is None:
            return found
        for item in self.sequence(node, "workdays"):
            day = self.parse_date(item, year)
            if day in holidays:
                raise self.error(item, f"{day} is listed as both holiday and workday")
            if day.weekday() < _SATURDAY:
                raise self.error(
                    item, f"make-up workday {day} is a {day:%A}; only Sat/Sun can be make-up days"
                )
            if day in found:
                raise self.error(item, f"workday {day} is listed more than once")
            found.add(day)
        return found
