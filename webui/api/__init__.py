"""The JSON REST API under ``/api/v1``, described by an OpenAPI document built from the same table."""
