"""Report periods: ISO weeks (Monday to Sunday, UTC), named ``YYYY-Www`` for people and by their Monday for Dagster.

The weekly partition key is the Monday's date (``YYYY-MM-DD``, as ``dg.WeeklyPartitionsDefinition`` names it with
``day_offset=1``); the report file and the CLI use the ISO label (``2026-W48``). Both name the same seven days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_LABEL = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Week:
    start: date  # Monday
    end: date  # Sunday, inclusive

    @property
    def label(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def partition_key(self) -> str:
        return self.start.isoformat()

    def previous(self) -> Week:
        return week_of(self.start - timedelta(days=7))

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(7)]


def week_of(day: date) -> Week:
    """The ISO week containing ``day``."""
    start = day - timedelta(days=day.weekday())
    return Week(start, start + timedelta(days=6))


def parse_period(text: str) -> Week:
    """``YYYY-Www`` (ISO week) or a ``YYYY-MM-DD`` day (its week); a clear error otherwise."""
    match = _LABEL.match(text.strip())
    if match:
        year, week = int(match.group(1)), int(match.group(2))
        try:
            return week_of(date.fromisocalendar(year, week, 1))
        except ValueError:
            raise ValueError(f"period {text!r}: {year} has no ISO week {week}") from None
    try:
        return week_of(date.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"period {text!r} is neither an ISO week (YYYY-Www, e.g. 2026-W48) nor a date "
                         "(YYYY-MM-DD)") from None
