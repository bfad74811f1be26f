"""Routing over HTTP: presence and caps, the queue and get next, focus mode by URL, and the
routing objects' CRUD with validation errors that name the field."""

from __future__ import annotations

from tests.web.conftest import Api

RULE = {
    "name": "refunds to billing",
    "position": 0,
    "event": "message_received",
    "conditions": [{"field": "text", "op": "contains", "value": "refund"}],
    "actions": [{"type": "assign_team", "team_id": "billing"}, {"type": "set_priority", "priority": "high"}],
}


async def test_routing_objects_crud_and_rules_take_effect(api: Api) -> None:
    boss = api.auth(api.admin_token)
    refused = await api.client.post("/api/v1/routing/rules", json=RULE, headers=boss)
    assert refused.status == 422
    assert (await refused.json())["error"]["details"] == [{"field": "actions.0.team_id", "problem": "no such team"}]
    team = await api.client.post("/api/v1/routing/teams", json={"id": "billing", "name": "Биллинг"}, headers=boss)
    assert team.status == 201 and (await team.json())["name"] == "Биллинг"
    created = await api.client.post("/api/v1/routing/rules", json=RULE, headers=boss)
    assert created.status == 201, await created.text()
    rule = await created.json()
    bad_regex = {**RULE, "conditions": [{"field": "text", "op": "matches", "value": "(a)\\1"}]}
    refused = await api.client.put(f"/api/v1/routing/rules/{rule['id']}", json=bad_regex, headers=boss)
    assert refused.status == 422 and "backreference" in str(await refused.json())
    unknown = await api.client.post("/api/v1/routing/rules", json={**RULE, "when": "always"}, headers=boss)
    assert unknown.status == 422
    operator = api.auth(api.operator_token)
    assert (await api.client.get("/api/v1/routing/rules", headers=operator)).status == 403
    listed = await (await api.client.get("/api/v1/routing/rules", headers=boss)).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]

    pushed = await api.push("m1", "I want a refund")
    conversation = await (
        await api.client.get(f"/api/v1/conversations/{pushed['conversation_id']}", headers=boss)
    ).json()
    assert conversation["team_id"] == "billing" and conversation["priority"] == "high"
    assert conversation["messages"]["items"][-1]["kind"] == "system"
    assert conversation["messages"]["items"][-1]["text"] == "rules: refunds to billing"

    assert (await api.client.delete(f"/api/v1/routing/rules/{rule['id']}", headers=boss)).status == 204
    assert (await api.client.delete(f"/api/v1/routing/rules/{rule['id']}", headers=boss)).status == 404


async def test_calendars_templates_and_settings(api: Api) -> None:
    boss = api.auth(api.admin_token)
    calendar = {
        "name": "Москва",
        "time_zone": "Europe/Moscow",
        "weekly": [{"weekday": 0, "start": "22:00", "end": "06:00"}],
        "holidays": ["2026-12-31"],
        "exceptions": [{"date": "2026-12-30", "intervals": []}],
    }
    created = await api.client.post("/api/v1/routing/calendars", json=calendar, headers=boss)
    assert created.status == 201, await created.text()
    calendar_id = (await created.json())["id"]
    wrong_zone = await api.client.post(
        "/api/v1/routing/calendars", json={**calendar, "time_zone": "Mars/Base"}, headers=boss
    )
    assert wrong_zone.status == 422 and "time zone" in str(await wrong_zone.json())
    template = {"name": "ack", "bodies": {"en": "Hi {{ contact_name }}", "ru": "Здравствуйте, {{ contact_name }}"}}
    made = await api.client.post("/api/v1/routing/templates", json=template, headers=boss)
    assert made.status == 201
    sneaky = {"name": "x", "bodies": {"en": "{{ ''.__class__ }}"}}
    assert (await api.client.post("/api/v1/routing/templates", json=sneaky, headers=boss)).status == 422
    settings = {"acknowledgement_template_id": (await made.json())["id"], "default_calendar_id": calendar_id}
    stored = await api.client.put("/api/v1/routing/settings", json=settings, headers=boss)
    assert stored.status == 200, await stored.text()
    assert (await (await api.client.get("/api/v1/routing/settings", headers=boss)).json())[
        "default_calendar_id"
    ] == calendar_id
    dangling = await api.client.put("/api/v1/routing/settings", json={"no_answer_template_id": "nope"}, headers=boss)
    assert dangling.status == 422


async def test_presence_caps_queue_get_next_and_focus_mode(api: Api) -> None:
    boss, olga = api.auth(api.admin_token), api.auth(api.operator_token)
    me = f"/api/v1/operators/{api.operator_id}"
    assert (await api.client.patch(me, json={"max_open": 1}, headers=olga)).status == 403  # caps are a supervisor's
    assert (await api.client.patch(me, json={"max_open": 1, "focus_mode": True}, headers=boss)).status == 200
    first = await api.push("m1", contact="c1")
    second = await api.push("m2", contact="c2")
    queue = await (await api.client.get("/api/v1/queue", headers=boss)).json()
    assert [i["conversation_id"] for i in queue["items"]] == [first["conversation_id"], second["conversation_id"]]
    online = await api.client.patch(me, json={"presence": "online"}, headers=olga)
    assert (await online.json())["presence"] == "online"
    queue = await (await api.client.get("/api/v1/queue", headers=boss)).json()
    assert queue["total"] == 1  # the first was assigned to olga at once
    assert (await api.client.post("/api/v1/queue/next", headers=olga)).status == 409  # at her cap
    # focus mode: only her own open conversations, by list and by URL; no queue, no contact list
    assert (await api.client.get("/api/v1/queue", headers=olga)).status == 403
    assert (await api.client.get("/api/v1/contacts", headers=olga)).status == 403
    listed = await (await api.client.get("/api/v1/conversations", headers=olga)).json()
    assert [c["id"] for c in listed["items"]] == [first["conversation_id"]]
    other = await api.client.get(f"/api/v1/conversations/{second['conversation_id']}", headers=olga)
    assert other.status == 403
    # a supervisor may exceed the cap, on the record
    over = {"assignee_id": api.operator_id}
    assert (
        await api.client.patch(f"/api/v1/conversations/{second['conversation_id']}", json=over, headers=boss)
    ).status == 409
    forced = await api.client.patch(
        f"/api/v1/conversations/{second['conversation_id']}", json={**over, "over_cap": True}, headers=boss
    )
    assert forced.status == 200 and (await forced.json())["assignee_id"] == api.operator_id
    # resolving one lets get next work again once something waits
    resolved = {"status": "resolved"}
    assert (
        await api.client.patch(f"/api/v1/conversations/{first['conversation_id']}", json=resolved, headers=olga)
    ).status == 200
    assert (await api.client.post("/api/v1/queue/next", headers=olga)).status == 409  # still holds 1 of 1
    await api.client.patch(f"/api/v1/conversations/{second['conversation_id']}", json=resolved, headers=olga)
    assert (await api.client.post("/api/v1/queue/next", headers=olga)).status == 204  # nothing waits
    third = await api.push("m3", contact="c3")
    listed = await (await api.client.get("/api/v1/conversations", headers=olga)).json()
    assert [c["id"] for c in listed["items"]] == [third["conversation_id"]]  # auto-assigned to her


async def test_operators_set_their_own_language_and_time_zone(api: Api) -> None:
    olga, me = api.auth(api.operator_token), f"/api/v1/operators/{api.operator_id}"
    saved = await api.client.patch(me, json={"locale": "ru", "time_zone": "Europe/Moscow"}, headers=olga)
    assert saved.status == 200, await saved.text()
    body = await saved.json()
    assert (body["locale"], body["time_zone"]) == ("ru", "Europe/Moscow")
    for wrong in ("Mars/Olympus", "America", "../../etc/passwd"):
        assert (await api.client.patch(me, json={"time_zone": wrong}, headers=olga)).status == 422, wrong
    assert (await api.client.patch(me, json={"locale": "de"}, headers=olga)).status == 422
    cleared = await api.client.patch(me, json={"locale": None}, headers=olga)
    assert (await cleared.json())["locale"] is None
