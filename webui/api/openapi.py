"""The OpenAPI 3.1 document, generated from the endpoint table and the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from webui.api import schemas as s
from webui.api.endpoint import Endpoint

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"


def openapi_document(endpoints: Iterable[Endpoint], *, version: str) -> dict[str, Any]:
    endpoints = tuple(endpoints)
    bodies = {endpoint.body for endpoint in endpoints if endpoint.body}
    answers: set[type[BaseModel]] = {s.Health, s.ErrorOut}
    for endpoint in endpoints:
        answers.update(model for _, model in endpoint.responses.values() if model and issubclass(model, BaseModel))
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(model, "validation") for model in bodies}
    wanted |= {(model, "serialization") for model in answers}
    modes = sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1]))
    refs, definitions = models_json_schema(modes, ref_template=_REF)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness and store reachability (no authentication)",
                "tags": ["health"],
                "security": [],
                "responses": {
                    "200": _response("healthy", s.Health),
                    "503": _response("the store does not answer", s.Health),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["meta"],
                "security": [],
                "responses": {"200": {"description": "the OpenAPI document", "content": {"application/json": {}}}},
            }
        },
        "/api/v1/ws": {
            "get": {
                "operationId": "live",
                "summary": "Live events over a WebSocket, resumable by sequence number",
                "description": (
                    'Send `{"type": "hello", "after": <last seq or null>, "stream": <id or null>}`; the server'
                    ' replays what was missed, then answers `{"type": "ready", "seq", "stream"}` (or `reset`:'
                    " reload over REST) and pushes frames `{seq, type, conversation?, message?, operator?}`."
                    ' `{"type": "presence", "presence": "online"|"away"}` sets presence. Operator token or'
                    " session cookie; a foreign Origin is refused."
                ),
                "tags": ["live"],
                "security": [{"operatorToken": []}],
                "responses": {
                    "101": {"description": "switching to the WebSocket protocol"},
                    "400": {"description": "not a WebSocket request"},
                    "401": {"description": "missing or wrong token or session"},
                    "403": {"description": "a foreign Origin"},
                },
            }
        },
    }
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": endpoint.operation_id,
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "security": [{"channelKey": []}] if endpoint.auth == "channel" else [{"operatorToken": []}],
            "parameters": _parameters(endpoint, schemas),
            "responses": {
                str(status): _response(description, model)
                for status, (description, model) in sorted(endpoint.responses.items())
            },
        }
        if endpoint.role.value != "operator":
            operation["description"] = f"Requires the `{endpoint.role}` role or higher."
        if endpoint.body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(endpoint.body, "validation")]}},
            }
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Inbox API",
            "version": version,
            "description": 'Omnichannel helpdesk inbox. Errors are `{"error": {"code", "message"}}`.',
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "operatorToken": {"type": "http", "scheme": "bearer", "description": "an operator's API token"},
                "channelKey": {"type": "http", "scheme": "bearer", "description": "an api channel's key"},
            },
        },
    }
    return document


def _response(description: str, model: type[BaseModel] | type[bytes] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if model is bytes:
        response["content"] = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    elif model is not None:
        response["content"] = {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}
    return response


def _parameters(endpoint: Endpoint, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """Path, query and header parameters; enums the query models refer to join ``schemas``."""
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    if endpoint.query:
        schema = endpoint.query.model_json_schema(ref_template=_REF)
        schemas.update(schema.get("$defs", {}))
        for name, property_schema in schema.get("properties", {}).items():
            parameter = {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                "schema": {k: v for k, v in property_schema.items() if k not in ("title", "description")},
            }
            if "description" in property_schema:
                parameter["description"] = property_schema["description"]
            parameters.append(parameter)
    for header in endpoint.headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": False,
                "description": header.description,
                "schema": {"type": "string", "maxLength": header.max_length},
            }
        )
    return parameters
