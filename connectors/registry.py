"""Which connector class serves which channel kind.

Built-in connectors are listed explicitly; third-party ones register under the entry-point
group ``inbox.connectors`` (name = channel kind, value = ``module:Class``). Nothing is found by
scanning modules.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from connectors.base import Connector

__all__ = ["BUILTIN_CONNECTORS", "connector_class", "registered_kinds"]

BUILTIN_CONNECTORS: dict[str, str] = {
    "api": "connectors.api:ApiConnector",
    "email": "connectors.email.connector:EmailConnector",
}


@cache
def _entry_point_connectors() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="inbox.connectors")}


def registered_kinds() -> list[str]:
    return sorted({**_entry_point_connectors(), **BUILTIN_CONNECTORS})


def connector_class(kind: str) -> type[Connector]:
    target = BUILTIN_CONNECTORS.get(kind) or _entry_point_connectors().get(kind)
    if target is None:
        raise LookupError(f"no connector for channel kind {kind!r} (known: {', '.join(registered_kinds())})")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
