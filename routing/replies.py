"""One conversation's auto-replies: which triggers answer now and what they say.

Each trigger answers once (the acknowledgement, a rule's template) or at most once per period
(out of hours, no answer yet), and a contact gets no more than the hourly limit; the marks that
keep count are written in the caller's unit of work (:mod:`routing.marks`).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from inbox.clock import Clock
from inbox.domain import Conversation
from inbox.ports import AutoReply
from routing.calendar import BusinessCalendar
from routing.catalog import Catalog
from routing.language import detect_language
from routing.marks import Marks
from routing.templates import render

__all__ = ["Replies"]

log = logging.getLogger(__name__)


class Replies:
    """Sends one conversation's auto-replies: each trigger once (``once``) or at most once per
    period (out of hours, no answer), and no more than the per-contact hourly limit."""

    def __init__(
        self,
        catalog: Catalog,
        marks: Marks,
        clock: Clock,
        conversation: Conversation,
        name: str | None,
        language: Any,
        calendar: BusinessCalendar,
        *,
        text: str | None = None,
        channel: str | None = None,
        fresh: bool = False,
        marked: list[str] | None = None,
    ) -> None:
        self.catalog, self.marks, self.clock, self.conversation = catalog, marks, clock, conversation
        self.name, self.language, self.calendar, self.text, self.channel = name, language, calendar, text, channel
        self.written: list[AutoReply] = []
        self.fresh = fresh
        self.marked = [] if marked is None else marked  # the marks set, so they can be forgotten

    async def add(self, template_id: str | None, trigger: str, *, once: bool) -> AutoReply | None:
        """The reply this trigger sends now, marked as sent (the caller stores it in the same
        unit of work), or None when the trigger has answered already or a limit holds it back."""
        conversation = self.conversation
        template = self.catalog.template(template_id)
        if template is None:
            return None
        marks, now, settings = self.marks, self.clock.now(), self.catalog.settings
        mark = f"routing:auto_reply:{conversation.id}:{trigger}"
        # a conversation created with this message has answered no trigger yet
        last = None if self.fresh else await marks.get(mark)
        period = timedelta(minutes=settings.out_of_hours_period_minutes)
        if last is not None and (once or now - datetime.fromisoformat(last) < period):
            return None
        if not await self._within_contact_limit(now):
            log.info("auto-reply %s to conversation %s held back: contact limit", trigger, conversation.number)
            return None
        await self._mark(mark, now.isoformat())
        text = render(
            template,
            self.language or detect_language(self.text),  # detected only when a reply is written
            contact_name=self.name,
            conversation_number=conversation.number,
            next_opening=lambda: self.calendar.next_opening(now),
            channel_name=self.channel,
            time_zone=self.calendar.time_zone,
        )
        reply = AutoReply(text, trigger)
        self.written.append(reply)
        return reply

    async def _within_contact_limit(self, now: datetime) -> bool:
        marks, limit = self.marks, self.catalog.settings.auto_replies_per_contact_per_hour
        key = f"routing:auto_reply_contact:{self.conversation.contact_id}"
        hour_ago = (now - timedelta(hours=1)).isoformat()
        recent = [moment for moment in json.loads(await marks.get(key) or "[]") if moment > hour_ago]
        if len(recent) >= limit:
            return False
        await self._mark(key, json.dumps([*recent, now.isoformat()]))
        return True

    async def _mark(self, key: str, value: str) -> None:
        await self.marks.set(key, value)
        self.marked.append(key)
