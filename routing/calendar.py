"""Business hours: when a channel or team is staffed, in its own time zone.

Routing asks per message whether the team is open, when it opens next, and how much staffed time
passed between two instants (SLA clocks stop outside business hours). All answers come from one
primitive, the UTC spans of each local day (:meth:`BusinessCalendar._day_spans`), so they cannot
disagree with each other.

Wall-clock rules, decided once here:

* An interval belongs to the local date it starts on. ``end <= start`` runs overnight into the next
  day (``22:00-06:00`` on Friday covers Saturday morning); ``start == end`` is a full 24 hours, so
  ``00:00-00:00`` is a whole day and ``09:00-00:00`` runs to midnight.
* A holiday closes the intervals that start on its date; an overnight interval that began the
  evening before still runs into the holiday morning. An exception replaces whatever the weekly
  hours and the holidays say for its date; an empty exception closes the date.
* Overlapping or touching intervals are allowed and mean their union (an editor may save them
  mid-edit, and the union is unambiguous).
* Wall times become instants with the zone's rules of their date: ``09:00-17:00`` is 8 hours on a
  DST change day too, an overnight ``22:00-06:00`` lasts 9 hours across fall-back and 7 across
  spring-forward. A wall time that occurs twice (fall-back) means its first occurrence; one that
  does not exist (spring-forward gap) means the moment the clocks jump, the first instant at which
  the clock shows that time or later. Both rules keep the mapping monotonic, so splitting an
  interval at any wall time never changes the hours, and spans come out ordered by start.
* Times are whole minutes, so the JSON shape (``"HH:MM"``) round-trips losslessly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ALWAYS_OPEN", "BusinessCalendar", "Hours", "Span", "WeeklyInterval"]

Span: TypeAlias = tuple[datetime, datetime]
"""An open span ``[start, end)`` as aware UTC datetimes."""

_DAY = timedelta(days=1)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_CACHE_DAYS = 1024  # routing asks about "now" over and over; a bounded cache keeps that O(1)
# Past the last holiday or exception a calendar repeats weekly. Two weeks of that pattern show a
# closed moment if there is one, even if a DST jump swallowed it in one of the weeks.
_PATTERN_DAYS = 15
_TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_time(value: object, what: str) -> None:
    if not isinstance(value, time):
        raise ValueError(f"{what}: expected a datetime.time, got {value!r}")
    if value.tzinfo is not None:
        raise ValueError(f"{what}: a wall time must not carry a tzinfo (the calendar has the time zone)")
    if value.second or value.microsecond:
        raise ValueError(f"{what}: business hours are whole minutes, got {value.isoformat()}")


@dataclass(frozen=True, slots=True)
class Hours:
    """Hours within one local date; ``end <= start`` runs past midnight (see the module docstring)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        _check_time(self.start, "start")
        _check_time(self.end, "end")


@dataclass(frozen=True, slots=True, kw_only=True)
class WeeklyInterval:
    """Recurring hours on one weekday (0 = Monday, as :meth:`date.weekday`)."""

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if isinstance(self.weekday, bool) or not isinstance(self.weekday, int) or not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday: expected 0 (Monday) to 6 (Sunday), got {self.weekday!r}")
        _check_time(self.start, "start")
        _check_time(self.end, "end")


@dataclass(frozen=True, slots=True, kw_only=True)
class BusinessCalendar:
    """A time zone, weekly hours, holidays and one-off exceptions; channels and teams refer to one by id.

    Every method takes and returns timezone-aware datetimes (naive ones raise ``ValueError``: a
    naive instant would silently mean the server's zone); results are in UTC.
    """

    id: str
    name: str
    time_zone: str
    weekly: tuple[WeeklyInterval, ...] = ()
    holidays: frozenset[date] = frozenset()
    exceptions: Mapping[date, tuple[Hours, ...]] = field(default_factory=dict, hash=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)
    _by_weekday: tuple[tuple[Hours, ...], ...] = field(init=False, repr=False, compare=False, hash=False)
    _last_special: date | None = field(init=False, repr=False, compare=False, hash=False)
    _cache: dict[date, tuple[Span, ...]] = field(init=False, repr=False, compare=False, hash=False)
    _known: list[tuple[datetime, datetime, bool]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("id", "name", "time_zone"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name}: expected a string, got {getattr(self, name)!r}")
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder name ("America")
            raise ValueError(f"time_zone: unknown IANA time zone {self.time_zone!r}") from None
        weekly = tuple(self.weekly)
        for index, interval in enumerate(weekly):
            if not isinstance(interval, WeeklyInterval):
                raise ValueError(f"weekly[{index}]: expected a WeeklyInterval, got {interval!r}")
        holidays = frozenset(self.holidays)
        for day in holidays:
            _check_date(day, "holidays")
        exceptions: dict[date, tuple[Hours, ...]] = {}
        for day in self.exceptions:
            _check_date(day, "exceptions")
        for day, hours in sorted(self.exceptions.items()):
            exceptions[day] = tuple(_as_hours(item, f"exceptions[{day.isoformat()}]") for item in hours)
        by_weekday = tuple(
            tuple(sorted((Hours(w.start, w.end) for w in weekly if w.weekday == wd), key=lambda h: h.start))
            for wd in range(7)
        )
        set_ = object.__setattr__
        set_(self, "weekly", weekly)
        set_(self, "holidays", holidays)
        set_(self, "exceptions", MappingProxyType(exceptions))
        set_(self, "_zone", zone)
        set_(self, "_by_weekday", by_weekday)
        set_(self, "_last_special", max(holidays | exceptions.keys(), default=None))
        set_(self, "_cache", {})
        set_(self, "_known", [])  # the last is_open() answer and the instants it holds between

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and deepcopy through the JSON shape: the read-only exceptions view cannot be pickled."""
        return (type(self).from_json, (self.to_json(),))

    # -- questions routing asks ------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies in business hours; called once per routed message, so the last answer
        holds until its span or gap ends, and otherwise it only looks at the spans of three cached
        local days (yesterday's may run overnight into today; tomorrow's matters where a fall-back
        crosses midnight, as St. John's did until 2010)."""
        at = _utc(at, "at")
        if self._known:
            since, until, answer = self._known[0]
            if since <= at < until:
                return answer
        day = at.astimezone(self._zone).date()
        for candidate in (day - _DAY, day, day + _DAY):
            for start, end in self._day_spans(candidate):
                if start <= at < end:
                    self._known[:] = [(start, end, True)]
                    return True
        self._known[:] = [(at, self.next_opening(at) or _END_OF_TIME, False)]
        return False

    def next_opening(self, after: datetime) -> datetime | None:
        """The first instant ``>= after`` that is open (``after`` itself when open now), or None when
        the calendar never opens again. No arbitrary horizon: past the last holiday or exception
        the weekly pattern repeats, so the search ends there."""
        after = _utc(after, "after")
        for start, end in self._spans(self._local_date(after) - _DAY):
            if end > after:
                return max(start, after)
        return None

    def next_closing(self, after: datetime) -> datetime | None:
        """The first instant ``>= after`` that is closed (``after`` itself when closed now), or None
        when the calendar stays open for good (24/7 from some point on)."""
        after = _utc(after, "after")
        first = self._local_date(after)
        until = max(first, self._last_special or first) + _PATTERN_DAYS * _DAY
        edge = after
        for start, end in self._spans(first - _DAY, until):
            if start > edge:
                return edge
            edge = max(edge, end)
        # No gap in two weeks of the bare weekly pattern: it covers the whole week, open for good.
        # Without weekly hours nothing opens after the last exception, so the edge is final.
        return None if any(self._by_weekday) else edge

    def open_intervals(self, start: datetime, end: datetime) -> list[Span]:
        """The open spans within ``[start, end)``, clipped, merged and ordered; empty when ``end <= start``."""
        start, end = _utc(start, "start"), _utc(end, "end")
        result: list[Span] = []
        if end <= start:
            return result
        first, last = self._local_date(start) - _DAY, self._local_date(end) + _DAY
        for span_start, span_end in self._spans(first, last):
            span_start, span_end = max(span_start, start), min(span_end, end)
            if span_start >= span_end:
                continue
            if result and span_start <= result[-1][1]:
                result[-1] = (result[-1][0], max(result[-1][1], span_end))
            else:
                result.append((span_start, span_end))
        return result

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Open seconds in ``[start, end)``; 0.0 when ``end <= start`` so clock skew never yields negative SLA time."""
        total = sum((e - s for s, e in self.open_intervals(start, end)), timedelta())
        return total.total_seconds()

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime | None:
        """The earliest instant by which ``duration`` of open time has passed since ``start`` (an SLA
        deadline); None if the calendar never accumulates that much."""
        start = _utc(start, "start")
        if duration < timedelta():
            raise ValueError(f"duration must not be negative, got {duration}")
        if not duration:
            return start
        remaining, cursor = duration, start
        for span_start, span_end in self._spans(self._local_date(start) - _DAY):
            span_start = max(span_start, cursor)
            if span_end <= span_start:
                continue
            if span_end - span_start >= remaining:
                return span_start + remaining
            remaining -= span_end - span_start
            cursor = span_end
        return None

    # -- the one primitive -----------------------------------------------------------------------

    def _day_spans(self, day: date) -> tuple[Span, ...]:
        """UTC spans of the intervals that start on local ``day``, ordered by start (cached)."""
        spans = self._cache.get(day)
        if spans is not None:
            return spans
        if day in self.exceptions:
            hours = self.exceptions[day]
        elif day in self.holidays:
            hours = ()
        else:
            hours = self._by_weekday[day.weekday()]
        result = []
        for item in hours:
            start = self._instant(day, item.start)
            end = self._instant(day if item.end > item.start else day + _DAY, item.end)
            if end > start:  # an interval wholly inside a spring-forward gap has no time
                result.append((start, end))
        spans = tuple(sorted(result))
        if len(self._cache) >= _CACHE_DAYS:
            self._cache.clear()
        self._cache[day] = spans
        return spans

    def _spans(self, first: date, last: date | None = None) -> Iterator[Span]:
        """Spans of the local days from ``first``, ordered by start (the wall-to-instant mapping is
        monotonic). Without ``last`` it runs on while the calendar can still open: forever with
        weekly hours, else up to the last exception."""
        if last is None and not any(self._by_weekday):
            last = self._last_special or first - _DAY
        day = first
        while last is None or day <= last:
            yield from self._day_spans(day)
            day += _DAY

    def _instant(self, day: date, at: time) -> datetime:
        """The UTC instant of a local wall time: first occurrence if repeated, the jump if skipped."""
        wall = datetime.combine(day, at)
        earlier = wall.replace(tzinfo=self._zone).utcoffset()
        later = wall.replace(tzinfo=self._zone, fold=1).utcoffset()
        assert earlier is not None and later is not None
        if earlier >= later:  # unique, or repeated (fold=0 is the first occurrence)
            return (wall - earlier).replace(tzinfo=UTC)
        # Skipped: the jump lies in [wall - later, wall - earlier]; transitions are whole seconds.
        low, high = wall - later, wall - earlier
        while (high - low) > timedelta(seconds=1):
            middle = low + timedelta(seconds=(high - low) // timedelta(seconds=1) // 2)
            if middle.replace(tzinfo=UTC).astimezone(self._zone).utcoffset() == later:
                high = middle
            else:
                low = middle
        return high.replace(tzinfo=UTC)

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self._zone).date()

    # -- JSON shape for the API and the stores ---------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The API/store shape; ``from_json(to_json())`` gives back an equal calendar."""
        return {
            "id": self.id,
            "name": self.name,
            "time_zone": self.time_zone,
            "weekly": [{"weekday": w.weekday, "start": _hhmm(w.start), "end": _hhmm(w.end)} for w in self.weekly],
            "holidays": sorted(day.isoformat() for day in self.holidays),
            "exceptions": [
                {"date": day.isoformat(), "intervals": [{"start": _hhmm(h.start), "end": _hhmm(h.end)} for h in hours]}
                for day, hours in self.exceptions.items()
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> BusinessCalendar:
        """Parse the API/store shape; raises ValueError naming the offending path (``weekly[2].start``).

        Strict about unknown keys, so a misspelt ``"holiday"`` fails instead of being ignored.
        ``"24:00"`` is accepted as an end time (the same as ``"00:00"``: midnight after the start).
        """
        obj = _object(
            data, "calendar", required={"id", "name", "time_zone"}, optional={"weekly", "holidays", "exceptions"}
        )
        weekly = []
        for index, item in enumerate(_list(obj.get("weekly", []), "weekly")):
            path = f"weekly[{index}]"
            entry = _object(item, path, required={"weekday", "start", "end"})
            weekday = entry["weekday"]
            if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
                raise ValueError(f"{path}.weekday: expected an integer 0 (Monday) to 6 (Sunday), got {weekday!r}")
            start, end = _parse_hours(entry, path)
            weekly.append(WeeklyInterval(weekday=weekday, start=start, end=end))
        holidays = [
            _parse_date(item, f"holidays[{i}]") for i, item in enumerate(_list(obj.get("holidays", []), "holidays"))
        ]
        exceptions: dict[date, tuple[Hours, ...]] = {}
        for index, item in enumerate(_list(obj.get("exceptions", []), "exceptions")):
            path = f"exceptions[{index}]"
            entry = _object(item, path, required={"date", "intervals"})
            day = _parse_date(entry["date"], f"{path}.date")
            if day in exceptions:
                raise ValueError(f"{path}.date: {day.isoformat()} has an exception already")
            hours = []
            for i, interval in enumerate(_list(entry["intervals"], f"{path}.intervals")):
                where = f"{path}.intervals[{i}]"
                hours.append(Hours(*_parse_hours(_object(interval, where, required={"start", "end"}), where)))
            exceptions[day] = tuple(hours)
        return cls(
            id=_string(obj["id"], "id"),
            name=_string(obj["name"], "name"),
            time_zone=_string(obj["time_zone"], "time_zone"),
            weekly=tuple(weekly),
            holidays=frozenset(holidays),
            exceptions=exceptions,
        )


def _utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what}: expected a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _check_date(value: object, what: str) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError(f"{what}: expected a datetime.date (a local date), got {value!r}")


def _as_hours(item: object, what: str) -> Hours:
    if isinstance(item, Hours):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return Hours(*item)
    raise ValueError(f"{what}: expected Hours or a (start, end) pair of times, got {item!r}")


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _object(value: Any, path: str, *, required: set[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected an object, got {type(value).__name__}")
    missing = sorted(required - value.keys())
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    unknown = sorted(value.keys() - required - set(optional))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{path}: expected a list, got {type(value).__name__}")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}: expected a non-empty string, got {value!r}")
    return value


def _parse_time(value: Any, path: str, *, end: bool = False) -> time:
    if end and value == "24:00":
        return time(0)
    match = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'{path}: expected a time "HH:MM" (00:00-23:59), got {value!r}')
    return time(int(match[1]), int(match[2]))


def _parse_hours(entry: dict[str, Any], path: str) -> tuple[time, time]:
    return _parse_time(entry["start"], f"{path}.start"), _parse_time(entry["end"], f"{path}.end", end=True)


def _parse_date(value: Any, path: str) -> date:
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f'{path}: expected a date "YYYY-MM-DD", got {value!r}')


ALWAYS_OPEN = BusinessCalendar(
    id="always-open",
    name="Always open",
    time_zone="UTC",
    weekly=tuple(WeeklyInterval(weekday=day, start=time(0), end=time(0)) for day in range(7)),
)
"""24/7: the calendar of a channel or team that names none."""
