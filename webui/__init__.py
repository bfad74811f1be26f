"""The web layer: REST API now; operator pages, WebSockets and translations as they arrive."""
