"""One conversation's auto-replies: which triggers answer now and what they say.

Each trigger answers once (the acknowledgement, a rule's template) or at most once per period
(out of hours, no answer yet), and a contact gets no more than the hourly limit. What counts is
the stored auto-replies themselves (:mod:`routing.marks`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
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
        new_contact: bool = False,
    ) -> None:
        self.catalog, self.marks, self.clock, self.conversation = catalog, marks, clock, conversation
        self.name, self.language, self.calendar, self.text, self.channel = name, language, calendar, text, channel
        self.written: list[AutoReply] = []
        self.fresh, self.new_contact = fresh, new_contact  # a conversation, a contact created with this message

    async def add(self, template_id: str | None, trigger: str, *, once: bool) -> AutoReply | None:
        """The reply this trigger sends now (the caller stores it in the same unit of work: the
        stored reply is the mark), or None when the trigger has answered already or a limit
        holds it back."""
        conversation = self.conversation
        template = self.catalog.template(template_id)
        if template is None:
            return None
        marks, now, settings = self.marks, self.clock.now(), self.catalog.settings
        last = await marks.last_sent(conversation.id, trigger, fresh=self.fresh)
        period = timedelta(minutes=settings.out_of_hours_period_minutes)
        if last is not None and (once or now - last < period):
            return None
        contact_id, limit = conversation.contact_id, settings.auto_replies_per_contact_per_hour
        if await marks.sent_to(contact_id, now - _HOUR, fresh=self.new_contact) >= limit:
            log.info("auto-reply %s to conversation %s held back: contact limit", trigger, conversation.number)
            return None
        text = render(
            template,
            self.language or detect_language(self.text),  # detected only when a reply is written
            contact_name=self.name,
            conversation_number=conversation.number,
            next_opening=lambda: self.calendar.next_opening(now),
            channel_name=self.channel,
            time_zone=self.calendar.time_zone,
        )
        marks.record(conversation.id, contact_id, trigger, now)
        reply = AutoReply(text, trigger)
        self.written.append(reply)
        return reply


_HOUR = timedelta(hours=1)
