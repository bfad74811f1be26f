"""A rule body as the API receives it, for the rule-language and engine tests alike."""

from __future__ import annotations

from typing import Any

RESOLVE = {"type": "resolve"}


def spec(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "rule",
        "position": 0,
        "event": "message_received",
        "conditions": [],
        "actions": [RESOLVE],
    }
    return data | overrides
