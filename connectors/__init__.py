"""Channel connectors: one module or package per channel behind :class:`connectors.base.Connector`."""

from connectors.base import Capabilities, Connector, ConnectorContext, OnInbound
from connectors.registry import connector_class, registered_kinds

__all__ = [
    "Capabilities",
    "Connector",
    "ConnectorContext",
    "OnInbound",
    "connector_class",
    "registered_kinds",
]
