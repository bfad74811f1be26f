"""Inbox: an omnichannel helpdesk. This package holds the domain types, the service that changes
them, the event bus, configuration, the CLI and the composition root (:mod:`inbox.app`)."""

__version__ = "0.1.0"
