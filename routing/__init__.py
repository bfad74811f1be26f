"""Routing: rules, business hours, auto-replies, assignment with focus-mode caps, SLA timers.

Arrives with the routing issue; it reacts to the inbox's events and calls the service.
"""
