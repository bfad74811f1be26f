"""What a run of rule actions comes to: the router folds the actions of the rules that matched
into one outcome, once per rule set and combination of matching rules, and applies it to each
conversation (its tags, the snooze time)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from inbox.domain import ConversationStatus, Priority
from routing.rules import (
    Action,
    AddTagAction,
    AssignOperatorAction,
    AssignTeamAction,
    ResolveAction,
    SendAutoReplyAction,
    SetPriorityAction,
    SnoozeAction,
)

__all__ = ["Effects"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Effects:
    """What a run of rule actions comes to, before it meets a conversation: actions apply in order,
    so the last team, priority, operator, snooze or resolve wins, and tags and templates add up."""

    rules: tuple[str, ...]
    reason: str
    changes: Mapping[str, Any]  # team_id, priority, status
    tags: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    operator_id: str | None = None
    snooze_minutes: int | None = None  # snoozed_until, once the time is known

    @classmethod
    def of(cls, rules: tuple[str, ...], reason: str, actions: Iterable[Action]) -> Effects:
        changes: dict[str, Any] = {}
        tags: dict[str, None] = {}
        templates: list[str] = []
        operator_id = snooze_minutes = None
        for action in actions:
            if isinstance(action, AssignTeamAction):
                changes["team_id"] = action.team_id
            elif isinstance(action, AssignOperatorAction):
                operator_id = action.operator_id
            elif isinstance(action, SetPriorityAction):
                changes["priority"] = Priority(action.priority)
            elif isinstance(action, AddTagAction):
                tags[action.tag] = None
            elif isinstance(action, SendAutoReplyAction):
                templates.append(action.template_id)
            elif isinstance(action, SnoozeAction):
                changes["status"] = ConversationStatus.SNOOZED
                snooze_minutes = action.minutes
            elif isinstance(action, ResolveAction):
                changes["status"] = ConversationStatus.RESOLVED
                snooze_minutes = None
        return cls(
            rules=rules,
            reason=reason,
            changes=MappingProxyType(changes),
            tags=tuple(tags),
            templates=tuple(templates),
            operator_id=operator_id,
            snooze_minutes=snooze_minutes,
        )
