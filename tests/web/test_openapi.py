"""The OpenAPI document matches the routes the application really serves, and is valid 3.1."""

from __future__ import annotations

import re

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from inbox.app import build
from inbox.config import load_settings
from tests.web.conftest import Api


def _served_operations(tmp_path) -> set[tuple[str, str]]:
    inbox = build(load_settings(overrides={"data_dir": tmp_path}, environ={}))
    operations = set()
    for route in inbox.web.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and (path.startswith("/api/") or path == "/healthz"):  # the pages are not the API
            operations.add((route.method.lower(), path))
    return operations


async def test_every_served_route_is_documented_and_nothing_else(api: Api, tmp_path) -> None:
    document = await (await api.client.get("/api/v1/openapi.json")).json()
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert _served_operations(tmp_path) == documented


async def test_document_is_openapi_31_with_resolvable_refs(api: Api) -> None:
    document = await (await api.client.get("/api/v1/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    text = str(document)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in schemas, f"dangling $ref to {name}"
    for schema in schemas.values():
        assert validator_for(schema, default=Draft202012Validator) is Draft202012Validator
        Draft202012Validator.check_schema(schema)
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_responses_match_their_documented_schema(api: Api) -> None:
    document = await (await api.client.get("/api/v1/openapi.json")).json()
    registry_root = {"components": document["components"]}

    def check(path: str, method: str, status: int, body: object) -> None:
        schema = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
        Draft202012Validator({**schema, **registry_root}).validate(body)

    pushed = await api.push("m1", "Привет")
    check("/api/v1/inbound", "post", 201, pushed)
    headers = api.auth(api.operator_token)
    listing = await (await api.client.get("/api/v1/conversations", headers=headers)).json()
    check("/api/v1/conversations", "get", 200, listing)
    conversation_id = pushed["conversation_id"]
    detail = await (await api.client.get(f"/api/v1/conversations/{conversation_id}", headers=headers)).json()
    check("/api/v1/conversations/{id}", "get", 200, detail)
    reply = await api.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": "ok"}, headers=headers
    )
    check("/api/v1/conversations/{id}/messages", "post", 201, await reply.json())
    error = await api.client.get("/api/v1/conversations?status=bogus", headers=headers)
    check("/api/v1/conversations", "get", 400, await error.json())
    operators = await (await api.client.get("/api/v1/operators", headers=headers)).json()
    check("/api/v1/operators", "get", 200, operators)
