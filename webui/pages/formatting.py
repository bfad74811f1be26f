"""Dates, durations and sizes as the operator reads them: in their language and their time zone.

Stored times are aware UTC datetimes; they are converted here and nowhere else, so a page never
shows a server-local or UTC time by accident.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime, format_time, format_timedelta
from babel.numbers import format_decimal

__all__ = ["DEFAULT_TIME_ZONE", "Formatter", "time_zone_named"]

DEFAULT_TIME_ZONE = "UTC"
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$")
"""IANA names only: the name may come from a cookie, and ZoneInfo reads files by it."""

_Moment = datetime
"""The type, by a name that :meth:`Formatter.datetime` does not hide inside the class."""


@cache
def _parsed(locale: str) -> Locale:
    return Locale.parse(locale)


def time_zone_named(name: str | None) -> tuple[str, tzinfo]:
    """A valid IANA zone and its name; an unknown or malformed name falls back to UTC rather
    than failing the page (the setting may predate a tzdata change)."""
    if name and _ZONE_NAME.match(name):
        try:
            return name, ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder name ("America")
            pass
    return DEFAULT_TIME_ZONE, UTC


@dataclass(frozen=True, slots=True)
class Formatter:
    """Given to templates as ``fmt``; ``now`` is fixed per request so one page is consistent."""

    locale: str
    zone_name: str
    zone: tzinfo
    now: _Moment
    gettext: Callable[[str], str]
    _babel: Locale = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # parsed once: Babel would parse the locale string again on every date of every row
        object.__setattr__(self, "_babel", _parsed(self.locale))

    def local(self, moment: _Moment) -> _Moment:
        return moment.astimezone(self.zone)

    def datetime(self, moment: _Moment | None) -> str:
        """Full date and time, for titles and message headers."""
        if moment is None:
            return ""
        return format_datetime(self.local(moment), "medium", tzinfo=self.zone, locale=self._babel)

    def short(self, moment: _Moment | None) -> str:
        """Time alone for today, the date otherwise: what a list row has room for."""
        if moment is None:
            return ""
        local, today = self.local(moment), self.local(self.now)
        if local.date() == today.date():
            return format_time(local, "short", tzinfo=self.zone, locale=self._babel)
        pattern = "d MMM" if local.year == today.year else "d MMM y"
        return format_datetime(local, pattern, tzinfo=self.zone, locale=self._babel)

    def iso(self, moment: _Moment | None) -> str:
        """Machine-readable, for ``<time datetime>`` and the live script."""
        return moment.astimezone(UTC).isoformat() if moment else ""

    def since(self, moment: _Moment | None) -> str:
        """How long ago, e.g. "5 minutes" / "5 минут"."""
        if moment is None:
            return ""
        return self.duration(self.now - moment)

    def duration(self, delta: timedelta) -> str:
        return format_timedelta(max(delta, timedelta(0)), threshold=1.0, locale=self._babel)

    def in_future(self, delta: timedelta) -> str:
        """With the preposition ("in 5 minutes", "через 5 минут"), so the noun takes the case the
        language needs; a bare duration is in the nominative whatever the sentence."""
        return format_timedelta(max(delta, timedelta(0)), threshold=1.0, add_direction=True, locale=self._babel)

    def size(self, size: int) -> str:
        """Bytes as kilobytes or megabytes, with the locale's decimal mark and unit."""
        if size >= 1024 * 1024:
            number = format_decimal(size / (1024 * 1024), format="#,##0.#", locale=self._babel)
            return self.gettext("%(size)s MB") % {"size": number}
        number = format_decimal(max(size / 1024, 0.1), format="#,##0.#", locale=self._babel)
        return self.gettext("%(size)s KB") % {"size": number}
