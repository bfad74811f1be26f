"""Business hours in virtual time: aware datetimes only, with the DST nights where wall clocks lie.

The 2026 transitions used: Europe/Berlin springs forward on Sunday 29 March (02:00 -> 03:00) and
falls back on Sunday 25 October (03:00 -> 02:00); America/New_York on Sunday 8 March (02:00 ->
03:00) and Sunday 1 November (02:00 -> 01:00).
"""

from __future__ import annotations

import copy
import functools
import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.calendar import ALWAYS_OPEN, BusinessCalendar, Hours, WeeklyInterval

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
HOUR = 3600.0
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def t(value: str) -> time:
    return time.fromisoformat(value)


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    """A wall time in ``zone`` as an aware instant (the tests' inputs are aware, never naive)."""
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def weekly(*specs: str) -> tuple[WeeklyInterval, ...]:
    """``"0 09:00-17:00"`` -> Monday 09:00-17:00."""
    result = []
    for spec in specs:
        weekday, hours = spec.split()
        start, end = hours.split("-")
        result.append(WeeklyInterval(weekday=int(weekday), start=t(start), end=t(end)))
    return tuple(result)


def calendar(zone: str = BERLIN, *specs: str, **kwargs: object) -> BusinessCalendar:
    return BusinessCalendar(id="cal", name="Support", time_zone=zone, weekly=weekly(*specs), **kwargs)  # type: ignore[arg-type]


OFFICE = calendar(BERLIN, *(f"{day} 09:00-13:00" for day in range(5)), *(f"{day} 14:00-18:00" for day in range(5)))


# -- weekly hours --------------------------------------------------------------------------------


def test_several_intervals_per_day_start_inclusive_end_exclusive() -> None:
    monday = (2026, 1, 12)
    assert not OFFICE.is_open(local(BERLIN, *monday, 8, 59, 59))
    assert OFFICE.is_open(local(BERLIN, *monday, 9))
    assert OFFICE.is_open(local(BERLIN, *monday, 12, 59, 59, 999999))
    assert not OFFICE.is_open(local(BERLIN, *monday, 13))
    assert OFFICE.is_open(local(BERLIN, *monday, 14))
    assert not OFFICE.is_open(local(BERLIN, *monday, 18))
    assert not OFFICE.is_open(local(BERLIN, 2026, 1, 17, 12))  # Saturday
    assert OFFICE.business_seconds(local(BERLIN, 2026, 1, 12), local(BERLIN, 2026, 1, 19)) == 40 * HOUR


def test_overnight_interval_belongs_to_the_day_it_starts() -> None:
    cal = calendar(BERLIN, f"{FRI} 22:00-06:00")
    assert not cal.is_open(local(BERLIN, 2026, 1, 16, 21, 59))
    assert cal.is_open(local(BERLIN, 2026, 1, 16, 22))
    assert cal.is_open(local(BERLIN, 2026, 1, 17, 3))  # Saturday morning, from Friday's interval
    assert not cal.is_open(local(BERLIN, 2026, 1, 17, 6))
    assert not cal.is_open(local(BERLIN, 2026, 1, 16, 3))  # Friday morning: Thursday has no interval
    assert cal.business_seconds(utc(2026, 1, 12), utc(2026, 1, 19)) == 8 * HOUR


def test_equal_start_and_end_is_24_hours_and_midnight_end_runs_to_midnight() -> None:
    full = calendar(BERLIN, f"{MON} 09:00-09:00")
    assert full.business_seconds(utc(2026, 1, 12), utc(2026, 1, 14)) == 24 * HOUR
    assert full.is_open(local(BERLIN, 2026, 1, 13, 8, 59)) and not full.is_open(local(BERLIN, 2026, 1, 13, 9))
    whole_day = calendar(BERLIN, f"{MON} 00:00-00:00")
    assert whole_day.open_intervals(utc(2026, 1, 11), utc(2026, 1, 15)) == [
        (local(BERLIN, 2026, 1, 12).astimezone(UTC), local(BERLIN, 2026, 1, 13).astimezone(UTC))
    ]
    evening = calendar(BERLIN, f"{MON} 09:00-00:00")
    assert evening.business_seconds(utc(2026, 1, 12), utc(2026, 1, 14)) == 15 * HOUR


def test_overlapping_and_touching_intervals_mean_their_union() -> None:
    cal = calendar(BERLIN, f"{MON} 09:00-12:00", f"{MON} 11:00-13:00", f"{MON} 13:00-14:00", f"{SUN} 20:00-10:00")
    spans = cal.open_intervals(utc(2026, 1, 11), utc(2026, 1, 13))
    assert spans == [(local(BERLIN, 2026, 1, 11, 20).astimezone(UTC), local(BERLIN, 2026, 1, 12, 14).astimezone(UTC))]
    assert cal.business_seconds(utc(2026, 1, 11), utc(2026, 1, 13)) == 18 * HOUR
    assert cal.next_closing(local(BERLIN, 2026, 1, 11, 21)) == local(BERLIN, 2026, 1, 12, 14)


# -- holidays and exceptions ---------------------------------------------------------------------


def test_holiday_closes_the_day_but_not_the_overnight_interval_from_the_evening_before() -> None:
    cal = calendar(BERLIN, *(f"{day} 09:00-17:00" for day in range(7)), *(f"{day} 22:00-02:00" for day in range(7)))
    cal = BusinessCalendar(**{**_fields(cal), "holidays": frozenset({date(2026, 1, 1)})})
    assert cal.is_open(local(BERLIN, 2026, 1, 1, 1))  # New Year's Eve's late shift runs on
    assert not cal.is_open(local(BERLIN, 2026, 1, 1, 12))
    assert not cal.is_open(local(BERLIN, 2026, 1, 1, 23))  # the holiday's own late shift does not start
    assert cal.is_open(local(BERLIN, 2026, 1, 2, 9))
    assert cal.business_seconds(local(BERLIN, 2026, 1, 1), local(BERLIN, 2026, 1, 2)) == 2 * HOUR
    assert cal.next_opening(local(BERLIN, 2026, 1, 1, 2)) == local(BERLIN, 2026, 1, 2, 9)


def test_exception_replaces_weekly_hours_and_holidays_for_its_date() -> None:
    cal = BusinessCalendar(
        **_fields(OFFICE),
        holidays=frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
        exceptions={
            date(2026, 12, 24): (Hours(t("10:00"), t("14:00")),),  # a holiday, but staffed
            date(2026, 12, 23): (),  # a Wednesday, closed
            date(2026, 12, 27): ((t("20:00"), t("01:00")),),  # a Sunday, overnight; pairs are accepted
        },
    )
    assert not cal.is_open(local(BERLIN, 2026, 12, 23, 10))
    assert cal.is_open(local(BERLIN, 2026, 12, 24, 10)) and not cal.is_open(local(BERLIN, 2026, 12, 24, 14))
    assert not cal.is_open(local(BERLIN, 2026, 12, 25, 10))
    assert cal.is_open(local(BERLIN, 2026, 12, 28, 0, 30)) and not cal.is_open(local(BERLIN, 2026, 12, 28, 1))
    assert cal.business_seconds(local(BERLIN, 2026, 12, 21), local(BERLIN, 2026, 12, 28)) == (8 + 8 + 4 + 4) * HOUR


# -- DST: wall-clock hours, real seconds ----------------------------------------------------------

DST = [
    pytest.param(BERLIN, date(2026, 3, 29), date(2026, 10, 25), id="berlin"),
    pytest.param(NEW_YORK, date(2026, 3, 8), date(2026, 11, 1), id="new-york"),
]


@pytest.mark.parametrize(("zone", "spring", "fall"), DST)
def test_day_interval_is_eight_hours_on_change_days(zone: str, spring: date, fall: date) -> None:
    cal = calendar(zone, *(f"{day} 09:00-17:00" for day in range(7)))
    for day in (spring, fall):
        start = datetime.combine(day, time(), ZoneInfo(zone))
        assert cal.business_seconds(start, start + timedelta(days=1)) == 8 * HOUR
        assert cal.next_opening(start) == datetime.combine(day, t("09:00"), ZoneInfo(zone))
        assert cal.next_closing(datetime.combine(day, t("12:00"), ZoneInfo(zone))) == datetime.combine(
            day, t("17:00"), ZoneInfo(zone)
        )


@pytest.mark.parametrize(("zone", "spring", "fall"), DST)
def test_overnight_interval_across_the_change_is_seven_or_nine_real_hours(zone: str, spring: date, fall: date) -> None:
    cal = calendar(zone, f"{SAT} 22:00-06:00")
    for sunday, hours in ((spring, 7), (fall, 9)):
        saturday = sunday - timedelta(days=1)
        opens = datetime.combine(saturday, t("22:00"), ZoneInfo(zone))
        closes = datetime.combine(sunday, t("06:00"), ZoneInfo(zone))
        assert (closes - opens.astimezone(UTC)).total_seconds() == hours * HOUR
        assert cal.open_intervals(opens - timedelta(days=2), opens + timedelta(days=2)) == [
            (opens.astimezone(UTC), closes.astimezone(UTC))
        ]
        assert cal.business_seconds(opens - timedelta(days=3), opens + timedelta(days=3)) == hours * HOUR
        assert cal.is_open(closes - timedelta(microseconds=1)) and not cal.is_open(closes)
        assert cal.next_closing(opens) == closes


@pytest.mark.parametrize(("zone", "spring", "fall"), DST)
def test_holiday_calendar_with_night_shifts_across_the_change(zone: str, spring: date, fall: date) -> None:
    """The DST Sunday is a holiday: Saturday's night shift still ends Sunday 06:00, Sunday's does not start."""
    specs = [f"{day} 08:00-18:00" for day in range(5)] + [f"{day} 22:00-06:00" for day in range(7)]
    cal = BusinessCalendar(**_fields(calendar(zone, *specs)), holidays=frozenset({spring, fall}))
    for sunday, night in ((spring, 7), (fall, 9)):
        saturday_noon = datetime.combine(sunday - timedelta(days=1), t("12:00"), ZoneInfo(zone))
        monday_noon = datetime.combine(sunday + timedelta(days=1), t("12:00"), ZoneInfo(zone))
        # Saturday's night shift, then Sunday closed, then Monday 08:00-12:00.
        assert cal.business_seconds(saturday_noon, monday_noon) == (night + 4) * HOUR
        assert not cal.is_open(datetime.combine(sunday, t("23:00"), ZoneInfo(zone)))
        assert cal.next_opening(datetime.combine(sunday, t("06:00"), ZoneInfo(zone))) == datetime.combine(
            sunday + timedelta(days=1), t("08:00"), ZoneInfo(zone)
        )


@pytest.mark.parametrize(("zone", "spring", "fall"), DST)
def test_24_hour_days_are_23_and_25_real_hours_and_split_anywhere_without_loss(
    zone: str, spring: date, fall: date
) -> None:
    whole = calendar(zone, *(f"{day} 00:00-00:00" for day in range(7)))
    # Split at a wall time that is skipped in spring and repeated in autumn.
    split = calendar(zone, *(f"{day} 00:00-01:30" for day in range(7)), *(f"{day} 01:30-00:00" for day in range(7)))
    split_gap = calendar(zone, *(f"{day} 00:00-02:30" for day in range(7)), *(f"{day} 02:30-00:00" for day in range(7)))
    for day, hours in ((spring, 23), (fall, 25)):
        start = datetime.combine(day, time(), ZoneInfo(zone))
        end = datetime.combine(day + timedelta(days=1), time(), ZoneInfo(zone))
        for cal in (whole, split, split_gap):
            assert cal.business_seconds(start, end) == hours * HOUR
            assert cal.open_intervals(start, end) == [(start.astimezone(UTC), end.astimezone(UTC))]
            assert cal.next_closing(start) is None


def test_skipped_wall_times_resolve_to_the_jump() -> None:
    spring = date(2026, 3, 29)
    jump = utc(2026, 3, 29, 1)  # 02:00 CET == 03:00 CEST
    starts_in_gap = calendar(BERLIN, f"{SUN} 02:30-04:00")
    assert starts_in_gap.open_intervals(utc(2026, 3, 28), utc(2026, 3, 30)) == [(jump, utc(2026, 3, 29, 2))]
    assert starts_in_gap.next_opening(utc(2026, 3, 28)) == jump
    ends_in_gap = calendar(BERLIN, f"{SAT} 22:00-02:30")
    assert ends_in_gap.open_intervals(utc(2026, 3, 28), utc(2026, 3, 30)) == [(utc(2026, 3, 28, 21), jump)]
    inside_gap = calendar(BERLIN, f"{SUN} 02:15-02:45")
    assert inside_gap.business_seconds(utc(2026, 3, 29), utc(2026, 3, 30)) == 0
    assert inside_gap.next_opening(utc(2026, 3, 28)) == local(BERLIN, 2026, 4, 5, 2, 15)  # the next Sunday
    assert inside_gap.business_seconds(utc(2026, 1, 1), utc(2027, 1, 1)) == (52 - 1) * HOUR / 2
    assert not starts_in_gap.is_open(jump - timedelta(microseconds=1)) and starts_in_gap.is_open(jump)
    assert spring.weekday() == SUN


def test_repeated_wall_times_mean_their_first_occurrence() -> None:
    cal = calendar(NEW_YORK, f"{SUN} 01:00-01:30", f"{SUN} 05:00-06:00")
    first = local(NEW_YORK, 2026, 11, 1, 1, 15)  # EDT, 05:15 UTC
    second = local(NEW_YORK, 2026, 11, 1, 1, 15, fold=1)  # EST, 06:15 UTC
    assert cal.is_open(first) and not cal.is_open(second)
    assert cal.open_intervals(utc(2026, 11, 1), utc(2026, 11, 1, 8))[0] == (
        utc(2026, 11, 1, 5),
        utc(2026, 11, 1, 5, 30),
    )
    assert cal.next_opening(second) == local(NEW_YORK, 2026, 11, 1, 5)
    # The repeated hour counts twice when an interval spans it: 00:30-02:00 is 2.5 real hours.
    spanning = calendar(NEW_YORK, f"{SUN} 00:30-02:00")
    assert spanning.business_seconds(utc(2026, 11, 1), utc(2026, 11, 2)) == 2.5 * HOUR
    assert spanning.is_open(second)


def test_midnight_fall_back_repeats_the_last_hour_of_saturday() -> None:
    """America/Santiago falls back at Sunday 00:00 to Saturday 23:00 (5 April 2026): Sunday's
    00:00-01:00 interval first starts after the repeated hour, so a second-pass Saturday 23:30 is closed."""
    zone = "America/Santiago"
    cal = calendar(zone, f"{SUN} 00:00-01:00", f"{SAT} 23:00-23:30")
    second_pass = local(zone, 2026, 4, 4, 23, 45, fold=1)
    assert not cal.is_open(second_pass)
    assert cal.next_opening(second_pass) == local(zone, 2026, 4, 5, 0)
    assert cal.is_open(local(zone, 2026, 4, 4, 23, 15)) and not cal.is_open(local(zone, 2026, 4, 4, 23, 15, fold=1))


def test_fall_back_across_midnight_needs_tomorrows_intervals() -> None:
    """St. John's fell back at 00:01 to 23:01 the day before until 2010: a second-pass Saturday 23:30
    comes after Sunday 00:00 first began, so Sunday's 00:00-01:00 interval is already running."""
    zone = "America/St_Johns"
    cal = calendar(zone, f"{SUN} 00:00-01:00")
    second_pass = local(zone, 2005, 10, 29, 23, 30, fold=1)
    assert second_pass.date().weekday() == SAT
    assert cal.is_open(second_pass) and not cal.is_open(local(zone, 2005, 10, 29, 23, 30))
    assert cal.business_seconds(utc(2005, 10, 29), utc(2005, 10, 31)) == 2 * HOUR


# -- next opening / closing, business time -------------------------------------------------------


def test_next_opening() -> None:
    friday_evening = local(BERLIN, 2026, 1, 16, 19)
    assert OFFICE.next_opening(friday_evening) == local(BERLIN, 2026, 1, 19, 9)
    assert OFFICE.next_opening(friday_evening).tzinfo is UTC  # type: ignore[union-attr]
    lunch = local(BERLIN, 2026, 1, 12, 13, 30)
    assert OFFICE.next_opening(lunch) == local(BERLIN, 2026, 1, 12, 14)
    open_now = local(BERLIN, 2026, 1, 12, 10, 0, 0, 1)
    assert OFFICE.next_opening(open_now) == open_now
    assert OFFICE.next_opening(open_now.astimezone(ZoneInfo("Asia/Tokyo"))) == open_now
    assert ALWAYS_OPEN.next_opening(utc(2026, 1, 1)) == utc(2026, 1, 1)


def test_next_opening_sees_far_exceptions_and_knows_when_it_never_opens() -> None:
    nothing = calendar(BERLIN)
    assert nothing.next_opening(utc(2026, 1, 1)) is None
    one_off = BusinessCalendar(**_fields(nothing), exceptions={date(2028, 6, 1): (Hours(t("10:00"), t("12:00")),)})
    assert one_off.next_opening(utc(2026, 1, 1)) == local(BERLIN, 2028, 6, 1, 10)
    assert one_off.next_opening(local(BERLIN, 2028, 6, 1, 12)) is None
    closed_for_two_years = BusinessCalendar(
        **_fields(OFFICE), holidays=frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(800))
    )
    assert closed_for_two_years.next_opening(utc(2026, 1, 1)) == local(BERLIN, 2028, 3, 13, 9)  # a Monday


def test_next_closing() -> None:
    assert OFFICE.next_closing(local(BERLIN, 2026, 1, 12, 10)) == local(BERLIN, 2026, 1, 12, 13)
    assert OFFICE.next_closing(local(BERLIN, 2026, 1, 12, 13, 30)) == local(BERLIN, 2026, 1, 12, 13, 30)
    assert ALWAYS_OPEN.next_closing(utc(2026, 1, 1)) is None
    nights = calendar(BERLIN, *(f"{day} 18:00-08:00" for day in range(7)), f"{MON} 08:00-18:00")
    # Open from Sunday 18:00 without a break until Tuesday 08:00.
    assert nights.next_closing(local(BERLIN, 2026, 1, 11, 19)) == local(BERLIN, 2026, 1, 13, 8)
    one_off = BusinessCalendar(**_fields(calendar(BERLIN)), exceptions={date(2026, 5, 1): ((t("22:00"), t("02:00")),)})
    assert one_off.next_closing(local(BERLIN, 2026, 5, 1, 23)) == local(BERLIN, 2026, 5, 2, 2)


def test_business_seconds_edges() -> None:
    monday = local(BERLIN, 2026, 1, 12, 10)
    assert OFFICE.business_seconds(monday, monday) == 0
    assert OFFICE.business_seconds(monday, monday - timedelta(hours=1)) == 0
    assert OFFICE.business_seconds(monday, monday + timedelta(minutes=90)) == 90 * 60
    assert OFFICE.business_seconds(monday, monday + timedelta(microseconds=1)) == 1e-6
    as_tokyo = (
        monday.astimezone(ZoneInfo("Asia/Tokyo")),
        (monday + timedelta(days=9)).astimezone(ZoneInfo("Asia/Tokyo")),
    )
    assert OFFICE.business_seconds(*as_tokyo) == OFFICE.business_seconds(monday, monday + timedelta(days=9))
    assert OFFICE.business_seconds(utc(2026, 1, 1), utc(2027, 1, 1)) == 261 * 8 * HOUR  # 261 weekdays
    assert ALWAYS_OPEN.business_seconds(utc(2026, 1, 1), utc(2026, 1, 2)) == 24 * HOUR


def test_add_business_time_is_an_sla_deadline() -> None:
    friday = local(BERLIN, 2026, 1, 16, 17)
    assert OFFICE.add_business_time(friday, timedelta(hours=2)) == local(BERLIN, 2026, 1, 19, 10)
    assert OFFICE.add_business_time(friday, timedelta(hours=1)) == local(BERLIN, 2026, 1, 16, 18)  # at the close
    assert OFFICE.add_business_time(friday, timedelta()) == friday
    saturday = local(BERLIN, 2026, 1, 17, 12)
    assert OFFICE.add_business_time(saturday, timedelta(hours=8 * 5 + 1)) == local(BERLIN, 2026, 1, 26, 10)
    assert calendar(BERLIN).add_business_time(friday, timedelta(seconds=1)) is None
    with pytest.raises(ValueError, match="negative"):
        OFFICE.add_business_time(friday, timedelta(seconds=-1))


def test_always_open_is_open_at_any_instant() -> None:
    for instant in (utc(2026, 3, 29, 1), local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1), utc(2030, 12, 31, 23, 59, 59)):
        assert ALWAYS_OPEN.is_open(instant)


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["is_open", "next_opening", "next_closing"])
def test_naive_instants_are_rejected(method: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        getattr(OFFICE, method)(datetime(2026, 1, 12, 10))


def test_naive_range_is_rejected() -> None:
    for call in (OFFICE.business_seconds, OFFICE.open_intervals):
        with pytest.raises(ValueError, match="end must be timezone-aware"):
            call(utc(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.add_business_time(datetime(2026, 1, 2), timedelta(hours=1))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: calendar("Mars/Olympus_Mons"), "time_zone: unknown IANA time zone 'Mars/Olympus_Mons'"),
        (lambda: calendar("../etc/passwd"), "unknown IANA time zone"),
        (lambda: WeeklyInterval(weekday=7, start=t("09:00"), end=t("10:00")), "weekday"),
        (lambda: WeeklyInterval(weekday=True, start=t("09:00"), end=t("10:00")), "weekday"),
        (lambda: Hours(t("09:00:30"), t("10:00")), "whole minutes"),
        (lambda: Hours(time(9, tzinfo=UTC), t("10:00")), "tzinfo"),
        (lambda: Hours("09:00", t("10:00")), "expected a datetime.time"),  # type: ignore[arg-type]
        (lambda: BusinessCalendar(**_fields(OFFICE), holidays=frozenset({utc(2026, 1, 1)})), "local date"),
        (lambda: BusinessCalendar(**_fields(OFFICE), exceptions={date(2026, 1, 1): (t("10:00"),)}), "pair"),
    ],
)
def test_invalid_values_raise_readable_errors(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()  # type: ignore[operator]


def test_calendar_is_immutable_hashable_and_pickles() -> None:
    cal = BusinessCalendar(**_fields(OFFICE), exceptions={date(2026, 12, 24): (Hours(t("10:00"), t("14:00")),)})
    with pytest.raises(AttributeError):
        cal.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cal.exceptions[date(2026, 12, 25)] = ()  # type: ignore[index]
    assert pickle.loads(pickle.dumps(cal)) == cal == copy.deepcopy(cal)
    assert hash(copy.deepcopy(cal)) == hash(cal)
    assert cal.is_open(local(BERLIN, 2026, 12, 24, 10))


# -- JSON ----------------------------------------------------------------------------------------

EXAMPLE = {
    "id": "cal_moscow",
    "name": "Moscow office",
    "time_zone": "Europe/Moscow",
    "weekly": [{"weekday": 0, "start": "09:00", "end": "18:00"}, {"weekday": 4, "start": "22:00", "end": "06:00"}],
    "holidays": ["2026-01-01", "2026-01-02"],
    "exceptions": [{"date": "2026-12-31", "intervals": [{"start": "10:00", "end": "14:00"}]}],
}


def test_json_round_trip() -> None:
    cal = BusinessCalendar.from_json(EXAMPLE)
    assert cal.to_json() == EXAMPLE
    assert BusinessCalendar.from_json(cal.to_json()) == cal
    assert cal.weekly[1] == WeeklyInterval(weekday=FRI, start=t("22:00"), end=t("06:00"))
    assert cal.exceptions == {date(2026, 12, 31): (Hours(t("10:00"), t("14:00")),)}
    assert BusinessCalendar.from_json(ALWAYS_OPEN.to_json()) == ALWAYS_OPEN


def test_json_minimal_and_24_00_end() -> None:
    cal = BusinessCalendar.from_json(
        {"id": "c", "name": "n", "time_zone": "UTC", "weekly": [{"weekday": 0, "start": "20:00", "end": "24:00"}]}
    )
    assert cal.business_seconds(utc(2026, 1, 12), utc(2026, 1, 13)) == 4 * HOUR
    assert cal.to_json()["weekly"] == [{"weekday": 0, "start": "20:00", "end": "00:00"}]
    assert cal.holidays == frozenset() and cal.exceptions == {}


def _broken(path: tuple[str | int, ...], value: object) -> dict[str, object]:
    data = copy.deepcopy(EXAMPLE)
    target: object = data
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "calendar: expected an object, got list"),
        ({"id": "c", "name": "n"}, "calendar: missing time_zone"),
        ({**EXAMPLE, "holiday": []}, "calendar: unknown key(s) holiday"),
        (_broken(("time_zone",), "Europe/Moskow"), "time_zone: unknown IANA time zone 'Europe/Moskow'"),
        (_broken(("time_zone",), 3), "time_zone: expected a non-empty string, got 3"),
        (_broken(("id",), ""), "id: expected a non-empty string"),
        (
            _broken(("weekly", 1, "weekday"), 7),
            "weekly[1].weekday: expected an integer 0 (Monday) to 6 (Sunday), got 7",
        ),
        (_broken(("weekly", 1, "weekday"), "mon"), "weekly[1].weekday"),
        (
            _broken(("weekly", 0, "start"), "9:00"),
            "weekly[0].start: expected a time \"HH:MM\" (00:00-23:59), got '9:00'",
        ),
        (_broken(("weekly", 0, "start"), "24:00"), "weekly[0].start: expected a time"),
        (_broken(("weekly", 0, "end"), "18:00:00"), "weekly[0].end: expected a time"),
        (_broken(("weekly", 0, "end"), 1800), "weekly[0].end: expected a time"),
        (_broken(("weekly",), {}), "weekly: expected a list, got dict"),
        (_broken(("weekly", 0), {"weekday": 0, "start": "09:00"}), "weekly[0]: missing end"),
        (_broken(("holidays", 1), "2026-13-01"), "holidays[1]: expected a date \"YYYY-MM-DD\", got '2026-13-01'"),
        (_broken(("holidays", 1), "20260102"), "holidays[1]: expected a date"),
        (_broken(("exceptions", 0, "intervals", 0, "end"), "2pm"), "exceptions[0].intervals[0].end: expected a time"),
        (
            _broken(("exceptions",), EXAMPLE["exceptions"] * 2),
            "exceptions[1].date: 2026-12-31 has an exception already",
        ),
    ],
)
def test_json_errors_name_the_path(data: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        BusinessCalendar.from_json(data)
    assert message in str(info.value)


# -- properties ----------------------------------------------------------------------------------

ZONES = [BERLIN, NEW_YORK, "Australia/Lord_Howe", "America/Santiago", "America/Havana", "Asia/Kolkata"]
INTERESTING = [t(v) for v in ("00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "09:00", "17:00", "23:30")]


@functools.cache
def _transitions(zone: str) -> tuple[datetime, ...]:
    """UTC instants of the zone's offset changes in 2026 (hourly scan; no transition is shorter)."""
    tz, found = ZoneInfo(zone), []
    instant = utc(2026, 1, 1)
    while instant.year == 2026:
        if (instant + timedelta(hours=1)).astimezone(tz).utcoffset() != instant.astimezone(tz).utcoffset():
            found.append(instant)
        instant += timedelta(hours=1)
    return tuple(found)


wall_times = st.one_of(st.sampled_from(INTERESTING), st.builds(time, st.integers(0, 23), st.integers(0, 59)))
hours_st = st.builds(Hours, wall_times, wall_times)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    near = [i.date() + timedelta(days=d) for i in _transitions(zone) for d in (-1, 0, 1)] or [date(2026, 6, 1)]
    days = st.sampled_from(near)
    intervals = st.builds(
        lambda wd, h: WeeklyInterval(weekday=wd, start=h.start, end=h.end), st.integers(0, 6), hours_st
    )
    return BusinessCalendar(
        id="c",
        name="n",
        time_zone=zone,
        weekly=tuple(draw(st.lists(intervals, max_size=8))),
        holidays=frozenset(draw(st.lists(days, max_size=3))),
        exceptions=draw(st.dictionaries(days, st.lists(hours_st, max_size=2).map(tuple), max_size=2)),
    )


@st.composite
def instants(draw: st.DrawFn, cal: BusinessCalendar) -> datetime:
    """Whole-second instants, mostly within three days of a DST change of the calendar's zone."""
    anchors = _transitions(cal.time_zone) or (utc(2026, 6, 1),)
    anchor = draw(st.sampled_from(anchors))
    return anchor + timedelta(seconds=draw(st.integers(-3 * 86400, 3 * 86400)))


def _wall_open(cal: BusinessCalendar, at: datetime) -> bool:
    """Oracle in wall-clock terms, valid for first-occurrence instants: is the local reading inside an interval?"""
    wall = at.astimezone(ZoneInfo(cal.time_zone)).replace(tzinfo=None)
    for day in (wall.date() - timedelta(days=1), wall.date()):
        if day in cal.exceptions:
            hours = list(cal.exceptions[day])
        elif day in cal.holidays:
            hours = []
        else:
            hours = [Hours(w.start, w.end) for w in cal.weekly if w.weekday == day.weekday()]
        for item in hours:
            start = datetime.combine(day, item.start)
            end = datetime.combine(day if item.end > item.start else day + timedelta(days=1), item.end)
            if start <= wall < end:
                return True
    return False


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.data())
def test_is_open_agrees_with_the_wall_clock_and_with_open_intervals(data: st.DataObject) -> None:
    cal = data.draw(calendars())
    at = data.draw(instants(cal))
    inside = any(s <= at < e for s, e in cal.open_intervals(at - timedelta(days=2), at + timedelta(days=2)))
    assert cal.is_open(at) == inside
    if at.astimezone(ZoneInfo(cal.time_zone)).fold == 0:
        assert cal.is_open(at) == _wall_open(cal, at)


@PROPERTY
@given(st.data())
def test_is_open_remembers_only_what_holds(data: st.DataObject) -> None:
    """Asked again and again, as routing does, in time order and out of it, one calendar answers
    as a fresh copy of it would."""
    cal = data.draw(calendars())
    moments = data.draw(st.lists(instants(cal), min_size=2, max_size=12))
    steps = data.draw(st.lists(st.integers(-7200, 7200), max_size=12))
    for at in [*moments, *(moments[-1] + timedelta(seconds=sum(steps[:i])) for i in range(len(steps)))]:
        assert cal.is_open(at) == BusinessCalendar.from_json(cal.to_json()).is_open(at)


@PROPERTY
@given(st.data())
def test_business_seconds_is_additive(data: st.DataObject) -> None:
    cal = data.draw(calendars())
    a, b, c = sorted(data.draw(instants(cal)) for _ in range(3))
    assert cal.business_seconds(a, c) == cal.business_seconds(a, b) + cal.business_seconds(b, c)
    assert 0 <= cal.business_seconds(a, c) <= (c - a).total_seconds()


@PROPERTY
@given(st.data())
def test_next_opening_is_open_and_nothing_before_it_is(data: st.DataObject) -> None:
    cal = data.draw(calendars())
    at = data.draw(instants(cal))
    opening = cal.next_opening(at)
    if opening is None:
        assert cal.business_seconds(at, at + timedelta(days=400)) == 0
        return
    assert opening >= at and cal.is_open(opening)
    assert cal.business_seconds(at, opening) == 0
    gap = opening - at
    for fraction in (0, 0.25, 0.5, 0.75, 0.999):
        sample = at + gap * fraction
        assert sample >= opening or not cal.is_open(sample)
    if opening > at:
        assert not cal.is_open(opening - timedelta(microseconds=1))


@PROPERTY
@given(st.data())
def test_next_closing_is_closed_and_everything_before_it_is_open(data: st.DataObject) -> None:
    cal = data.draw(calendars())
    at = data.draw(instants(cal))
    closing = cal.next_closing(at)
    if closing is None:
        assert cal.business_seconds(at, at + timedelta(days=30)) == 30 * 86400
        return
    assert closing >= at and not cal.is_open(closing)
    assert cal.business_seconds(at, closing) == (closing - at).total_seconds()


@PROPERTY
@given(st.data(), st.integers(0, 7 * 86400))
def test_add_business_time_inverts_business_seconds(data: st.DataObject, seconds: int) -> None:
    cal = data.draw(calendars())
    at = data.draw(instants(cal))
    deadline = cal.add_business_time(at, timedelta(seconds=seconds))
    if deadline is None:
        assert cal.business_seconds(at, at + timedelta(days=400)) < seconds
        return
    assert cal.business_seconds(at, deadline) == seconds
    if seconds:
        assert cal.business_seconds(at, deadline - timedelta(microseconds=1)) < seconds


def test_minute_sweep_over_both_berlin_changes_matches_the_wall_clock() -> None:
    """Exhaustive check of one busy calendar, minute by minute, over both 2026 change weekends."""
    cal = calendar(
        BERLIN,
        *(f"{day} 01:30-02:30" for day in range(7)),
        *(f"{day} 09:00-17:00" for day in range(7)),
        *(f"{day} 22:00-06:00" for day in (FRI, SAT)),
        f"{SUN} 23:30-02:15",
    )
    cal = BusinessCalendar(**_fields(cal), holidays=frozenset({date(2026, 10, 25)}))
    for start in (utc(2026, 3, 27), utc(2026, 10, 23)):
        for minute in range(4 * 24 * 60):
            at = start + timedelta(minutes=minute)
            if at.astimezone(ZoneInfo(BERLIN)).fold == 0:
                assert cal.is_open(at) == _wall_open(cal, at), at


def _fields(cal: BusinessCalendar) -> dict[str, object]:
    return {"id": cal.id, "name": cal.name, "time_zone": cal.time_zone, "weekly": cal.weekly}
