"""The REST API end to end over HTTP: shapes, authentication, roles, idempotency, bad input."""

from __future__ import annotations

import asyncio
import json

from inbox.accounts import add_channel
from inbox.domain import ConversationStatus
from storage.base import ConversationFilter
from tests.fakes import RecordingConnector, inbound
from tests.web.conftest import Api


async def test_inbound_then_list_reply_and_deliver(api: Api) -> None:
    first = await api.push("ext-1", "Где мой заказ?", subject="Заказ 15")
    assert first["duplicate"] is False
    response = await api.client.get("/api/v1/conversations", headers=api.auth(api.operator_token))
    assert response.status == 200
    page = await response.json()
    (item,) = page["items"]
    assert page["next_cursor"] is None
    assert item["id"] == first["conversation_id"] and item["subject"] == "Заказ 15"
    assert item["contact"]["name"] == "Ivan" and item["status"] == "open" and item["tags"] == []
    assert item["channel_id"] == api.channel_id and item["number"] >= 1001
    for key in ("priority", "assignee_id", "created_at", "last_message_at"):
        assert key in item

    reply = await api.client.post(
        f"/api/v1/conversations/{item['id']}/messages",
        json={"text": "Уже едет", "kind": "reply"},
        headers=api.auth(api.operator_token),
    )
    assert reply.status == 201
    message = await reply.json()
    assert message["delivery"]["status"] == "queued" and message["direction"] == "out"
    for _ in range(100):  # the dispatcher runs in the background of the live app
        stored = await api.inbox.store.get_message(message["id"])
        if stored.delivery_status.value != "queued":
            break
        await asyncio.sleep(0.02)
    assert stored.delivery_status.value == "sent"  # api channel without a webhook

    detail = await (
        await api.client.get(f"/api/v1/conversations/{item['id']}", headers=api.auth(api.operator_token))
    ).json()
    assert [m["text"] for m in detail["messages"]["items"]] == ["Где мой заказ?", "Уже едет"]


async def test_same_external_id_twice_is_one_message(api: Api) -> None:
    first = await api.push("dup-1")
    response = await api.client.post(
        "/api/v1/inbound",
        json={"external_id": "dup-1", "contact": {"external_id": "c1"}, "text": "again"},
        headers=api.auth(api.channel_key),
    )
    assert response.status == 200
    second = await response.json()
    assert second == {**first, "duplicate": True}
    messages = await api.inbox.store.list_messages(first["conversation_id"], limit=10)
    assert len(messages.items) == 1


async def test_idempotency_key_makes_retried_replies_single(api: Api) -> None:
    conversation_id = (await api.push("m1"))["conversation_id"]
    url = f"/api/v1/conversations/{conversation_id}/messages"
    headers = {**api.auth(api.operator_token), "Idempotency-Key": "click-1"}
    responses = await asyncio.gather(
        *(api.client.post(url, json={"text": "Один раз"}, headers=headers) for _ in range(5))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 200, 200, 200, 201]
    ids = {(await r.json())["id"] for r in responses}
    assert len(ids) == 1
    outbound = [
        m for m in (await api.inbox.store.list_messages(conversation_id, limit=10)).items if m.direction == "out"
    ]
    assert len(outbound) == 1


async def test_note_and_patch_status_assignee_tags(api: Api) -> None:
    conversation_id = (await api.push("m1"))["conversation_id"]
    note = await api.client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "internal", "kind": "note"},
        headers=api.auth(api.operator_token),
    )
    assert note.status == 201 and (await note.json())["delivery"] is None
    patched = await api.client.patch(
        f"/api/v1/conversations/{conversation_id}",
        json={"assignee_id": api.operator_id, "tags": ["vip", "доставка"], "priority": "high"},
        headers=api.auth(api.operator_token),
    )
    assert patched.status == 200, await patched.text()
    body = await patched.json()
    assert body["assignee_id"] == api.operator_id and body["tags"] == ["vip", "доставка"] and body["priority"] == "high"
    resolved = await api.client.patch(
        f"/api/v1/conversations/{conversation_id}", json={"status": "resolved"}, headers=api.auth(api.operator_token)
    )
    assert (await resolved.json())["status"] == "resolved"
    mine = await api.client.get(
        "/api/v1/conversations",
        params={"assignee": "me", "status": "resolved", "tag": "доставка"},
        headers=api.auth(api.operator_token),
    )
    assert [c["id"] for c in (await mine.json())["items"]] == [conversation_id]


async def test_operator_cannot_assign_others_but_admin_can(api: Api) -> None:
    conversation_id = (await api.push("m1"))["conversation_id"]
    admin = await (await api.client.get("/api/v1/me", headers=api.auth(api.admin_token))).json()
    refused = await api.client.patch(
        f"/api/v1/conversations/{conversation_id}",
        json={"assignee_id": admin["id"]},
        headers=api.auth(api.operator_token),
    )
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    allowed = await api.client.patch(
        f"/api/v1/conversations/{conversation_id}",
        json={"assignee_id": api.operator_id},
        headers=api.auth(api.admin_token),
    )
    assert allowed.status == 200


async def test_channels_list_needs_admin(api: Api) -> None:
    assert (await api.client.get("/api/v1/channels", headers=api.auth(api.operator_token))).status == 403
    response = await api.client.get("/api/v1/channels", headers=api.auth(api.admin_token))
    assert [c["kind"] for c in (await response.json())["items"]] == ["api"]


async def test_contacts_create_list_get(api: Api) -> None:
    created = await api.client.post(
        "/api/v1/contacts",
        json={
            "name": "Анна",
            "email": "anna@example.ru",
            "identities": [{"channel_kind": "telegram", "external_id": "77"}],
        },
        headers=api.auth(api.operator_token),
    )
    assert created.status == 201
    contact = await created.json()
    again = await api.client.post(
        "/api/v1/contacts",
        json={"name": "X", "identities": [{"channel_kind": "telegram", "external_id": "77"}]},
        headers=api.auth(api.operator_token),
    )
    assert again.status == 409
    found = await (
        await api.client.get("/api/v1/contacts", params={"q": "Анн"}, headers=api.auth(api.operator_token))
    ).json()
    assert [c["id"] for c in found["items"]] == [contact["id"]]
    one = await api.client.get(f"/api/v1/contacts/{contact['id']}", headers=api.auth(api.operator_token))
    assert (await one.json())["identities"] == [{"channel_kind": "telegram", "external_id": "77"}]


async def test_cursor_pagination_over_http(api: Api) -> None:
    for index in range(5):
        await api.push(f"m{index}", contact=f"c{index}")
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await (
            await api.client.get("/api/v1/conversations", params=params, headers=api.auth(api.operator_token))
        ).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = await api.inbox.store.list_conversations(ConversationFilter(), limit=10)
    assert seen == [c.id for c in everything.items] and len(seen) == 5


async def _error(response) -> tuple[int, str]:
    body = await response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return response.status, body["error"]["code"]


async def _nothing_stored(api: Api) -> None:
    page = await api.inbox.store.list_conversations(ConversationFilter(), limit=10)
    assert page.items == []


async def test_bad_input_is_refused_with_json_errors_and_nothing_stored(api: Api) -> None:
    key = api.auth(api.channel_key)
    post = api.client.post
    assert await _error(
        await post("/api/v1/inbound", data=b"{not json", headers={**key, "Content-Type": "application/json"})
    ) == (400, "invalid_json")
    assert await _error(
        await post("/api/v1/inbound", data=b"x=1", headers={**key, "Content-Type": "application/x-www-form-urlencoded"})
    ) == (415, "unsupported_media_type")
    valid = {"external_id": "e1", "contact": {"external_id": "c1"}, "text": "hi"}
    assert await _error(await post("/api/v1/inbound", json={**valid, "admin": True}, headers=key)) == (
        422,
        "validation_failed",
    )
    assert await _error(await post("/api/v1/inbound", json={**valid, "text": 5}, headers=key)) == (
        422,
        "validation_failed",
    )
    assert await _error(await post("/api/v1/inbound", json={**valid, "external_id": {"$ne": None}}, headers=key)) == (
        422,
        "validation_failed",
    )
    assert await _error(
        await post("/api/v1/inbound", json={**valid, "contact": {"external_id": {"$gt": ""}}}, headers=key)
    ) == (422, "validation_failed")
    assert await _error(await post("/api/v1/inbound", json=[valid], headers=key)) == (422, "validation_failed")
    huge = {**valid, "text": "я" * 70_000}  # over the 64 KiB limit of this test instance
    assert await _error(
        await post(
            "/api/v1/inbound", data=json.dumps(huge).encode(), headers={**key, "Content-Type": "application/json"}
        )
    ) == (413, "too_large")
    assert await _error(await post("/api/v1/inbound", json=valid)) == (401, "unauthorized")
    assert await _error(await post("/api/v1/inbound", json=valid, headers=api.auth("ch_wrong"))) == (
        401,
        "unauthorized",
    )
    assert await _error(await post("/api/v1/inbound", json=valid, headers=api.auth(api.operator_token))) == (
        401,
        "unauthorized",
    )
    await _nothing_stored(api)
    assert (await api.client.get("/healthz")).status == 200  # still serving


async def test_filter_values_that_look_like_operators_are_refused(api: Api) -> None:
    await api.push("m1")
    headers = api.auth(api.operator_token)
    for query in (
        "status[$ne]=open",
        "status=%7B%22%24ne%22%3A%22x%22%7D",
        "assignee=%7B%22%24ne%22%3Anull%7D",
        "channel=%24ne",
        "tag=%7B%22%24gt%22%3A%22%22%7D",
        "tag=$where",
        "limit=1000",
        "cursor=%7B%7D",
        "status=open&status=pending",
    ):
        status, code = await _error(await api.client.get(f"/api/v1/conversations?{query}", headers=headers))
        assert (status, code) == (400, "invalid_query"), query


async def test_wrong_token_and_missing_things(api: Api) -> None:
    assert await _error(await api.client.get("/api/v1/conversations")) == (401, "unauthorized")
    assert await _error(await api.client.get("/api/v1/conversations", headers=api.auth(api.channel_key))) == (
        401,
        "unauthorized",
    )
    headers = api.auth(api.operator_token)
    assert await _error(await api.client.get("/api/v1/conversations/" + "0" * 26, headers=headers)) == (
        404,
        "not_found",
    )
    assert await _error(await api.client.get("/api/v1/nothing-here", headers=headers)) == (404, "not_found")
    assert await _error(await api.client.delete("/api/v1/conversations", headers=headers)) == (
        405,
        "method_not_allowed",
    )
    conversation_id = (await api.push("m1"))["conversation_id"]
    bad_status = await api.client.patch(
        f"/api/v1/conversations/{conversation_id}", json={"status": "closed"}, headers=headers
    )
    assert await _error(bad_status) == (422, "validation_failed")
    past = await api.client.patch(
        f"/api/v1/conversations/{conversation_id}",
        json={"status": "snoozed", "snoozed_until": "2000-01-01T00:00:00Z"},
        headers=headers,
    )
    assert await _error(past) == (422, "invalid")
    null_status = await api.client.patch(
        f"/api/v1/conversations/{conversation_id}", json={"status": None}, headers=headers
    )
    assert await _error(null_status) == (422, "invalid")
    assert (await api.inbox.store.get_conversation(conversation_id)).status is ConversationStatus.OPEN


async def test_same_customer_id_on_two_api_channels_is_two_contacts(api: Api) -> None:
    from inbox.accounts import add_channel

    other = await add_channel(api.inbox.store, kind="api", name="Second shop")
    assert other.key
    first = await api.push("o-1", contact="cust-7")
    response = await api.client.post(
        "/api/v1/inbound",
        json={"external_id": "o-1", "contact": {"external_id": "cust-7", "name": "Someone else"}, "text": "hi"},
        headers=api.auth(other.key),
    )
    assert response.status == 201  # same external ids, another channel: not a duplicate
    second = await response.json()
    conversations = [await api.inbox.store.get_conversation(x["conversation_id"]) for x in (first, second)]
    assert conversations[0].contact_id != conversations[1].contact_id


async def test_idempotency_key_reused_for_a_different_message_is_refused(api: Api) -> None:
    conversation_id = (await api.push("m1"))["conversation_id"]
    headers = {**api.auth(api.operator_token), "Idempotency-Key": "k"}
    url = f"/api/v1/conversations/{conversation_id}/messages"
    assert (await api.client.post(url, json={"text": "a note", "kind": "note"}, headers=headers)).status == 201
    assert await _error(await api.client.post(url, json={"text": "a note", "kind": "reply"}, headers=headers)) == (
        409,
        "conflict",
    )
    assert await _error(await api.client.post(url, json={"text": "other", "kind": "note"}, headers=headers)) == (
        409,
        "conflict",
    )
    assert await api.inbox.store.pending_outbox_count() == 0  # nothing was queued for the customer


async def test_timezone_less_snooze_and_forged_cursors_are_client_errors(api: Api) -> None:
    conversation_id = (await api.push("m1"))["conversation_id"]
    headers = api.auth(api.operator_token)
    naive = await api.client.patch(
        f"/api/v1/conversations/{conversation_id}",
        json={"status": "snoozed", "snoozed_until": "2099-01-01T00:00:00"},
        headers=headers,
    )
    assert await _error(naive) == (422, "validation_failed")
    from storage.base import Cursor

    for cursor in (Cursor(10**30, "x").encode(), Cursor(True, "x").encode()):
        for url in ("/api/v1/conversations", f"/api/v1/conversations/{conversation_id}/messages"):
            assert await _error(await api.client.get(url, params={"cursor": cursor}, headers=headers)) == (
                422,
                "invalid",
            )


async def _delivery(api: Api, message_id: str, until: str) -> str:
    for _ in range(250):  # the dispatcher works in the background of the live app
        status = (await api.inbox.store.get_message(message_id)).delivery_status.value
        if status == until:
            break
        await asyncio.sleep(0.02)
    return status


async def test_a_failed_reply_is_resent_once_with_one_click(api: Api) -> None:
    channel = await add_channel(api.inbox.store, kind="test", name="Recorder")
    received = await api.inbox.service.receive(inbound(channel.channel.id, "m1"))
    RecordingConnector.failures, RecordingConnector.permanent = 1, True
    olga = api.auth(api.operator_token)
    posted = await api.client.post(
        f"/api/v1/conversations/{received.conversation.id}/messages", json={"text": "Ответ"}, headers=olga
    )
    message_id = (await posted.json())["id"]
    assert await _delivery(api, message_id, "failed") == "failed"
    failed = await (await api.client.get(f"/api/v1/conversations/{received.conversation.id}", headers=olga)).json()
    assert failed["messages"]["items"][-1]["delivery"]["error"] == "peer unavailable"
    resent = await api.client.post(f"/api/v1/messages/{message_id}/resend", headers=olga)
    assert resent.status == 200 and (await resent.json())["delivery"]["status"] in ("queued", "sent")
    assert await _delivery(api, message_id, "delivered") == "delivered"  # the recording peer confirms delivery
    assert [m.message.id for m in RecordingConnector.sent] == [message_id]
    again = await api.client.post(f"/api/v1/messages/{message_id}/resend", headers=olga)
    assert again.status == 409  # nothing failed: a second click sends nothing
    inbound_id = received.message.id
    assert (await api.client.post(f"/api/v1/messages/{inbound_id}/resend", headers=olga)).status == 422
