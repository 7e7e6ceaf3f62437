"""Five-field cron expressions (UTC), as Vixie cron reads them.

``minute hour day-of-month month day-of-week``; each field a comma list of ``*``, ``N``,
``A-B``, with an optional ``/STEP`` (``*/5``, ``1-30/10``, ``10/15`` = ``10-59/15``). Months
and week days also by name (``jan``, ``mon-fri``); day-of-week 0 and 7 are both Sunday.
Macros: ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``, ``@yearly``
(``@annually``). When both day fields are restricted a day matches if EITHER does (Vixie's
rule; a field that starts with ``*``, such as ``*/2``, counts as unrestricted).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import UserError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
# name, low, high, names
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_SEARCH_YEARS = 30  # any valid expression fires within 28 years (Feb 29 on a given weekday)


class CronError(UserError):
    """A cron expression that cannot be read; the message names the field and the fix."""


def _bad(field: str, part: str, why: str) -> CronError:
    return CronError(f"{field} field {part!r}: {why}")


def _value(text: str, field: str, lo: int, hi: int, names: dict[str, int], part: str) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        allowed = f"a number {lo}-{hi}"
        if names:
            allowed += " or a name (" + ", ".join(list(names)[:3]) + ", ...)"
        raise _bad(field, part, f"{text!r} is not {allowed}")
    value = int(text)
    if not lo <= value <= hi:
        raise _bad(field, part, f"must be {lo}-{hi}")
    return value


def _field(text: str, index: int) -> frozenset[int]:
    field, lo, hi, names = _FIELDS[index]
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _bad(field, text, "empty list item; separate values with single commas")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise _bad(field, part, f"step {step_text!r} must be a whole number >= 1")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start = _value(a, field, lo, hi, names, part)
            end = _value(b, field, lo, hi, names, part)
            if start > end:
                raise _bad(field, part, f"range {start}-{end} goes backwards; write it low-high")
        else:
            start = _value(base, field, lo, hi, names, part)
            end = (6 if index == 4 else hi) if slash else start  # '1/2' stops at Saturday
        out.update(range(start, end + 1, step))
    if index == 4 and 7 in out:  # 7 is Sunday too
        out.discard(7)
        out.add(0)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed expression: ``Cron.parse("*/5 * * * *").next_after(dt)``."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_star: bool  # day-of-month field starts with '*'
    weekday_star: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        if not isinstance(text, str):
            raise CronError(f"cron: got {text!r}; give a string such as '*/5 * * * *'")
        raw = text.strip()
        spec = _MACROS.get(raw.lower(), raw)
        if spec.startswith("@"):
            raise CronError(
                f"cron {text!r}: unknown macro; use one of {', '.join(sorted(_MACROS))} "
                "or five fields"
            )
        parts = spec.split()
        if len(parts) != 5:
            raise CronError(
                f"cron {text!r}: has {len(parts)} fields; give five: minute hour "
                "day-of-month month day-of-week (e.g. '*/5 * * * *'), all in UTC"
            )
        minutes, hours, days, months, weekdays = (_field(p, i) for i, p in enumerate(parts))
        stars = {"day_star": parts[2][0] == "*", "weekday_star": parts[4][0] == "*"}
        cron = cls(raw, minutes, hours, days, months, weekdays, **stars)
        if cron.weekday_star and not any(
            d <= _MAX_DAYS[m - 1] for m in cron.months for d in cron.days
        ):
            raise CronError(
                f"day-of-month field {parts[2]!r}: never occurs in month(s) {parts[3]!r}; "
                "the schedule would never run"
            )
        return cron

    def day_matches(self, dt: datetime) -> bool:
        dom = dt.day in self.days
        dow = (dt.isoweekday() % 7) in self.weekdays
        if self.day_star or self.weekday_star:
            return dom and dow
        return dom or dow

    def matches(self, dt: datetime) -> bool:
        return (
            dt.minute in self.minutes
            and dt.hour in self.hours
            and dt.month in self.months
            and self.day_matches(dt)
        )

    def next_after(self, dt: datetime) -> datetime:
        """The first fire time strictly after ``dt`` (aware or naive UTC), as aware UTC."""
        if dt.tzinfo is not None:
            dt = dt.astimezone(UTC).replace(tzinfo=None)
        t = dt.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end_year = t.year + _SEARCH_YEARS
        while t.year <= end_year:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self.day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            return t.replace(tzinfo=UTC)
        raise CronError(f"cron {self.text!r}: never fires")  # parse() refuses such expressions


def parse_cron(text: str) -> Cron:
    """Parse ``text`` or raise ``CronError`` naming the field, the value and the fix."""
    return Cron.parse(text)
