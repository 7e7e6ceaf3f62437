"""The cron parser and its next fire time, against a brute-force minute-by-minute reference.

Hypothesis draws the sets of values of each field, writes them as cron text in the forms
cron allows (lists, ranges, steps, names), and checks ``next_after`` against a reference that
walks minute by minute with the drawn sets and Vixie's day-of-month/day-of-week OR rule.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aesoperator.errors import UserError
from aesoperator.schedules import CronError, parse_cron

_MONTHS = [m.lower() for m in calendar.month_abbr[1:]]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_WINDOW = timedelta(days=9)
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


@st.composite
def field(draw: st.DrawFn, index: int) -> tuple[str, set[int], bool]:
    """(text, the values it means, whether it starts with '*')."""
    lo, hi = _BOUNDS[index]
    kind = draw(st.sampled_from(["star", "step", "list", "range", "range_step", "start_step"]))
    if kind == "star":
        return "*", set(range(lo, hi + 1)), True
    if kind == "step":
        step = draw(st.integers(1, hi - lo + 1))
        return f"*/{step}", set(range(lo, hi + 1, step)), True
    if kind == "list":
        values = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=4))
        return ",".join(_name(index, v, draw) for v in values), set(values), False
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(a, hi))
    if kind == "range":
        # no "7" for Sunday in a range: "0-7" is every day and "7-0" runs backwards
        text = f"{_name(index, a, draw, seven=False)}-{_name(index, b, draw, seven=False)}"
        return text, set(range(a, b + 1)), False
    step = draw(st.integers(1, hi - lo + 1))
    if kind == "start_step":
        return f"{a}/{step}", set(range(a, hi + 1, step)), False
    return f"{a}-{b}/{step}", set(range(a, b + 1, step)), False


def _name(index: int, value: int, draw: st.DrawFn, seven: bool = True) -> str:
    if index == 3 and draw(st.booleans()):
        return _MONTHS[value - 1].upper() if draw(st.booleans()) else _MONTHS[value - 1]
    if index == 4:
        choice = draw(st.sampled_from(["num", "name", "seven"]))
        if choice == "name":
            return _DAYS[value]
        if choice == "seven" and value == 0 and seven:
            return "7"
    return str(value)


def _reference(sets: list[set[int]], stars: list[bool], start: datetime) -> datetime | None:
    minutes, hours, days, months, weekdays = sets
    t = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = start + _WINDOW
    while t <= end:
        dom, dow = t.day in days, (t.isoweekday() % 7) in weekdays
        day_ok = (dom and dow) if (stars[2] or stars[4]) else (dom or dow)
        if t.minute in minutes and t.hour in hours and t.month in months and day_ok:
            return t
        t += timedelta(minutes=1)
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.tuples(*(field(i) for i in range(5))),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 1)),
)
def test_next_after_matches_a_minute_by_minute_walk(
    fields: tuple[tuple[str, set[int], bool], ...], start: datetime
) -> None:
    text = " ".join(f[0] for f in fields)
    sets = [f[1] for f in fields]
    stars = [f[2] for f in fields]
    try:
        cron = parse_cron(text)
    except CronError as exc:
        assert "never occurs" in str(exc), text  # the only refusal of well-formed fields
        assert stars[4] and not any(
            d <= (29 if m == 2 else calendar.monthrange(2001, m)[1])
            for m in sets[3]
            for d in sets[2]
        )
        return
    expected = _reference(sets, stars, start)
    got = cron.next_after(start.replace(tzinfo=UTC))
    if expected is not None:
        assert got == expected.replace(tzinfo=UTC), text
    else:
        assert got > (start + _WINDOW).replace(tzinfo=UTC), text
        assert cron.matches(got.replace(tzinfo=None)), text


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("@yearly", datetime(2026, 3, 1), datetime(2027, 1, 1)),
        ("@annually", datetime(2026, 12, 31, 23, 59), datetime(2027, 1, 1)),
        ("@monthly", datetime(2026, 1, 31, 12), datetime(2026, 2, 1)),
        ("@weekly", datetime(2026, 12, 6, 21, 30), datetime(2026, 12, 13)),  # a Sunday
        ("@daily", datetime(2026, 12, 6, 0, 0), datetime(2026, 12, 7)),
        ("@hourly", datetime(2026, 12, 6, 21, 0, 30), datetime(2026, 12, 6, 22)),
        ("0 0 29 2 *", datetime(2026, 3, 1), datetime(2028, 2, 29)),
        ("0 0 13 * fri", datetime(2026, 12, 6), datetime(2026, 12, 11)),  # OR: a Friday first
        ("0 0 13 * *", datetime(2026, 12, 6), datetime(2026, 12, 13)),
        ("0 0 */2 * mon", datetime(2026, 12, 6), datetime(2026, 12, 7)),  # '*/2': AND
        ("0 12 * dec sun", datetime(2026, 12, 6, 12), datetime(2026, 12, 13, 12)),
        ("30 4 1,15 * 5", datetime(2026, 12, 2), datetime(2026, 12, 4, 4, 30)),
    ],
)
def test_known_fire_times(text: str, after: datetime, expected: datetime) -> None:
    assert parse_cron(text).next_after(after.replace(tzinfo=UTC)) == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", "minute field '61': must be 0-59"),
        ("* 24 * * *", "hour field '24': must be 0-23"),
        ("* * 0 * *", "day-of-month field '0': must be 1-31"),
        ("* * * 13 *", "month field '13': must be 1-12"),
        ("* * * foo *", "month field 'foo': 'foo' is not a number 1-12 or a name"),
        ("* * * * 8", "day-of-week field '8': must be 0-7"),
        ("*/0 * * * *", "minute field '*/0': step '0' must be a whole number >= 1"),
        ("5-1 * * * *", "minute field '5-1': range 5-1 goes backwards"),
        ("1,,2 * * * *", "minute field '1,,2': empty list item"),
        ("* * * *", "has 4 fields; give five: minute hour day-of-month month day-of-week"),
        ("", "has 0 fields"),
        ("@reboot", "unknown macro"),
        ("0 0 30 2 *", "day-of-month field '30': never occurs in month(s) '2'"),
    ],
)
def test_bad_expressions_name_the_field(text: str, message: str) -> None:
    with pytest.raises(CronError) as info:
        parse_cron(text)
    assert message in str(info.value)
    assert isinstance(info.value, UserError)
