"""The routing catalog: which calendar a conversation follows, as the catalog changes."""

from __future__ import annotations

from routing.calendar import ALWAYS_OPEN
from routing.catalog import Catalog
from storage.base import Store


def _calendar(calendar_id: str) -> dict[str, object]:
    return {"id": calendar_id, "name": calendar_id, "time_zone": "Europe/Moscow", "weekly": [], "holidays": []}


async def test_the_team_calendar_wins_then_the_channels_then_the_default(store: Store) -> None:
    catalog = Catalog(store)
    await catalog.load()
    assert catalog.calendar_for("mail") is ALWAYS_OPEN
    for calendar_id in ("office", "desk", "night"):
        await catalog.put("calendar", _calendar(calendar_id))
    await catalog.put("settings", {"default_calendar_id": "office", "channel_calendars": {"mail": "desk"}})
    assert catalog.calendar_for("chat").id == "office"
    assert catalog.calendar_for("mail").id == "desk"
    await catalog.put("team", {"id": "support", "name": "Support"})
    assert catalog.calendar_for("mail", "support").id == "desk"  # a team without a calendar
    # every change is seen at once, though the answers are remembered between changes
    await catalog.put("team", {"id": "support", "name": "Support", "calendar_id": "night"})
    assert catalog.calendar_for("mail", "support").id == "night"
    await catalog.put("settings", {"default_calendar_id": "desk"})
    assert catalog.calendar_for("chat").id == catalog.calendar_for("mail").id == "desk"
    await catalog.delete("team", "support")
    assert catalog.calendar_for("mail", "support").id == "desk"
    reloaded = Catalog(store)
    await reloaded.load()
    assert reloaded.calendar_for("mail").id == "desk"
