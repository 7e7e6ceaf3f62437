"""Wait for a condition, never for a fixed time: the one polling helper of the test suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    condition: Callable[[], T], *, timeout: float = 20, interval: float = 0.01, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    The condition may also ``assert``: an ``AssertionError`` means "not yet", and the last one
    is what fails the test on expiry (so its message can show the state it saw).

    ``timeout`` only bounds a failing test (it says nothing about how fast things are); on
    expiry the assertion names ``what`` and the last value or assertion seen.
    """
    end = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except AssertionError as exc:
            if time.monotonic() >= end:
                raise AssertionError(
                    f"not true within {timeout:g}s: {what or condition!r} ({exc})"
                ) from exc
        else:
            if value:
                return value
            if time.monotonic() >= end:
                raise AssertionError(
                    f"not true within {timeout:g}s: {what or condition!r} (last: {value!r})"
                )
        time.sleep(interval)
