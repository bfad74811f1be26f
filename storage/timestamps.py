"""How both adapters store instants: integer microseconds since the Unix epoch, UTC.

Exact (no float rounding), cheap to index and compare, and the sort value of keyset cursors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inbox.clock import utc

__all__ = ["from_micros", "to_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    return (utc(moment) - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND
