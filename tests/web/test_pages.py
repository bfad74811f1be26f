"""The operator's pages over real HTTP: a whole instance (``inbox.app.build``) with the real
sessions, signed in through ``POST /login`` as a browser would, in English and Russian.

Hostile content is checked by parsing the answer as a browser would (Lexbor, an HTML5 parser),
not only by looking for strings: no element may carry an event handler, a ``javascript:`` URL
or a script other than the page's own, and every email frame's document is checked the same way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2.ext
import pytest
from aiohttp.test_utils import TestClient, TestServer
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from multidict import CIMultiDictProxy
from selectolax.lexbor import LexborHTMLParser

from connectors.email.sanitize import sanitize_html
from inbox.accounts import NewOperator, add_channel, add_operator
from inbox.app import Inbox, build
from inbox.config import load_settings
from inbox.domain import (
    Attachment,
    Channel,
    ConversationStatus,
    DeliveryStatus,
    InboundContact,
    InboundMessage,
    Priority,
    Role,
)
from inbox.service import Received
from tests.fakes import RecordingConnector
from webui import pages as pages_package
from webui.i18n import LOCALE_DIR, SUPPORTED_LOCALES, choose_locale, parse_accept_language
from webui.pages import inbox_list, setup_pages
from webui.pages.page import RENDERER
from webui.pages.render import CONTENT_SECURITY_POLICY, TEMPLATE_DIR
from webui.sessions import CSRF_FIELD, CSRF_HEADER

PASSWORD = "correct horse battery"
WEBUI = Path(pages_package.__file__).resolve().parent.parent

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SVG = "<svg onload=alert(1)><script>alert(2)</script></svg>"
LINK = '<a href="javascript:alert(1)">click</a>'
HOSTILE = f"{SCRIPT} {IMG} {LINK} {SVG}"
ESCAPED = (
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&lt;img src=x onerror=alert(1)&gt;",
    "&lt;svg onload=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;&lt;/svg&gt;",
    "&lt;a href=&#34;javascript:alert(1)&#34;&gt;click&lt;/a&gt;",
)


@dataclass
class Site:
    client: TestClient
    inbox: Inbox
    admin: NewOperator
    operator: NewOperator
    channel: Channel

    async def sign_in(self, who: NewOperator, *, accept_language: str = "en") -> None:
        """A fresh browser: the cookie jar is emptied, then the login form is posted."""
        self.client.session.cookie_jar.clear()
        response = await self.client.post(
            "/login",
            data={"email": who.operator.email, "password": PASSWORD, "next": "/"},
            headers={"Origin": self.origin, "Accept-Language": accept_language},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()

    @property
    def origin(self) -> str:
        return f"http://{self.client.host}:{self.client.port}"

    async def page(self, path: str, *, status: int = 200, accept_language: str = "en") -> tuple[str, LexborHTMLParser]:
        response = await self.client.get(path, headers={"Accept-Language": accept_language}, allow_redirects=False)
        text = await response.text()
        assert response.status == status, text
        assert response.content_type == "text/html"
        assert_page_headers(response.headers)
        return text, LexborHTMLParser(text)

    async def receive(self, external_id: str, text: str = "Hello", **fields: object) -> Received:
        contact = fields.pop("contact", InboundContact(external_id="c1", name="Ivan"))
        inbound = InboundMessage(
            channel_id=self.channel.id,
            external_id=external_id,
            contact=contact,  # type: ignore[arg-type]
            text=text,
            **fields,  # type: ignore[arg-type]
        )
        return await self.inbox.service.receive(inbound)

    async def frame(self, path: str | None) -> tuple[LexborHTMLParser, Mapping[str, str]]:
        """A mail's frame document, fetched as the browser fetches the iframe's src."""
        assert path and path.startswith("/messages/"), path
        response = await self.client.get(path)
        assert response.status == 200 and response.content_type == "text/html"
        return LexborHTMLParser(await response.text()), response.headers

    async def csrf(self, path: str = "/settings") -> str:
        _, tree = await self.page(path)
        node = tree.css_first('meta[name="csrf-token"]')
        assert node is not None
        return node.attributes["content"] or ""


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    RecordingConnector.reset()
    settings = load_settings(overrides={"data_dir": tmp_path, "max_body_bytes": 64 * 1024, "smtp_port": 0}, environ={})
    inbox = build(settings, connectors={"test": RecordingConnector})
    if RENDERER not in inbox.web:  # until the web app wires the pages itself
        setup_pages(inbox.web)
    async with TestClient(TestServer(inbox.web)) as client:
        admin = await add_operator(
            inbox.store, email="boss@example.com", name="Boss", role=Role.ADMIN, password=PASSWORD
        )
        operator = await add_operator(inbox.store, email="olga@example.com", name="Olga", password=PASSWORD)
        channel = (await add_channel(inbox.store, kind="api", name="Shop")).channel
        yield Site(client, inbox, admin, operator, channel)


def assert_page_headers(headers: CIMultiDictProxy[str]) -> None:
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"


def assert_inert(tree: LexborHTMLParser, *, own_scripts: int) -> None:
    """Nothing in the document can run: no event handler attributes, no javascript: URLs, and
    only the page's own external script."""
    scripts = tree.css("script")
    assert len(scripts) == own_scripts
    assert all((s.attributes.get("src") or "").startswith("/static/app.js") for s in scripts)
    for node in tree.css("*"):
        for name, value in node.attributes.items():
            assert not name.lower().startswith("on"), (node.tag, name, value)
            if name.lower() in ("href", "src", "action", "formaction", "xlink:href"):
                assert not (value or "").strip().lower().startswith("javascript:"), (node.tag, name, value)
    assert not tree.css("img[src='x']") and not tree.css("svg[onload]")


def text_of(tree: LexborHTMLParser, testid: str) -> str:
    node = tree.css_first(f'[data-testid="{testid}"]')
    assert node is not None, testid
    return " ".join(node.text().split())


# signing in


async def test_pages_send_browsers_to_the_login_form_and_back(site: Site) -> None:
    for path in ("/", "/conversations/01hzzzzzzzzzzzzzzzzzzzzzzz", "/settings", "/admin/operators"):
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"].startswith("/login?next=")
    response = await site.client.get("/?view=mine&q=%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7", allow_redirects=False)
    assert (
        response.headers["Location"]
        == "/login?next=%2F%3Fview%3Dmine%26q%3D%25D0%25B7%25D0%25B0%25D0%25BA%25D0%25B0%25D0%25B7"
    )
    text, tree = await site.page("/login?next=//evil.example/")
    assert tree.css_first('input[name="next"]').attributes["value"] == "/"
    assert_inert(tree, own_scripts=1)
    response = await site.client.post(
        "/login",
        data={"email": site.operator.operator.email, "password": PASSWORD, "next": "/settings"},
        headers={"Origin": site.origin},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/settings"
    response = await site.client.get("/login?next=/settings", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/settings"


async def test_login_page_follows_the_browser_language(site: Site) -> None:
    text, tree = await site.page("/login", accept_language="ru-RU,ru;q=0.9,en;q=0.5")
    assert tree.css_first("html").attributes["lang"] == "ru"
    assert text_of(tree, "login-submit") == "Войти"
    text, tree = await site.page("/login", accept_language="de-DE,fr;q=0.8")
    assert tree.css_first("html").attributes["lang"] == "en"
    assert text_of(tree, "login-submit") == "Sign in"


async def test_wrong_password_and_throttling_are_explained_in_the_page_language(site: Site) -> None:
    form = {"email": site.operator.operator.email, "password": "wrong", "next": "/"}
    headers = {"Origin": site.origin, "Accept-Language": "ru"}
    response = await site.client.post("/login", data=form, headers=headers)
    assert response.status == 401
    tree = LexborHTMLParser(await response.text())
    assert text_of(tree, "login-error") == "Неверный адрес или пароль."
    assert tree.css_first('[data-testid="login-email"]').attributes["value"] == site.operator.operator.email
    for _ in range(5):
        response = await site.client.post("/login", data=form, headers={**headers, "Accept-Language": "en"})
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0
    tree = LexborHTMLParser(await response.text())
    assert re.fullmatch(r"Too many attempts\. Try again in \d+ (seconds?|minutes?)\.", text_of(tree, "login-error"))
    response = await site.client.post("/login", data=form, headers=headers)
    tree = LexborHTMLParser(await response.text())
    assert re.fullmatch(r"Слишком много попыток\. Попробуйте снова через \d+ \w+\.", text_of(tree, "login-error"))


async def test_login_from_another_site_is_refused(site: Site) -> None:
    form = {"email": site.operator.operator.email, "password": PASSWORD}
    for origin in ("https://evil.example", "null"):
        response = await site.client.post("/login", data=form, headers={"Origin": origin}, allow_redirects=False)
        assert response.status == 403
        assert "Set-Cookie" not in response.headers


async def test_sign_out_needs_the_csrf_token(site: Site) -> None:
    await site.sign_in(site.operator)
    token = await site.csrf("/")
    response = await site.client.post("/logout", data={}, allow_redirects=False)
    assert response.status == 403
    await site.page("/")  # still signed in
    response = await site.client.post("/logout", data={CSRF_FIELD: token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    response = await site.client.get("/", allow_redirects=False)
    assert response.status == 303


# the inbox


async def test_inbox_lists_every_channel_newest_first_with_what_an_operator_needs(site: Site) -> None:
    mail = (await add_channel(site.inbox.store, kind="email", name="Support mail", settings={})).channel
    first = await site.receive("m1", "Где мой заказ?", subject="Заказ 15")
    second = await site.inbox.service.receive(
        InboundMessage(
            channel_id=mail.id,
            external_id="<a@b>",
            contact=InboundContact(external_id="anna@example.com", name="Anna"),
            text="Second line is not shown\nbut this is",
            thread_keys=(),
        )
    )
    await site.inbox.service.update(first.conversation.id, site.operator.operator, tags=("vip",))
    await site.inbox.service.reply(first.conversation.id, site.operator.operator, "Едет")
    await site.sign_in(site.operator)
    text, tree = await site.page("/?status=any")
    rows = tree.css('[data-testid="conversation-row"]')
    assert [r.attributes["data-conversation-id"] for r in rows] == [first.conversation.id, second.conversation.id]
    top, below = rows
    assert top.css_first('[data-testid="channel-badge"]').attributes["data-channel-kind"] == "api"
    assert below.css_first('[data-testid="channel-badge"]').attributes["data-channel-kind"] == "email"
    assert text_of(top, "conversation-subject") == "Заказ 15"
    assert text_of(below, "conversation-subject") == "Second line is not shown"
    assert text_of(below, "conversation-contact") == "Anna"
    assert "hidden" in top.css_first('[data-testid="needs-answer"]').attributes  # answered
    assert "hidden" not in below.css_first('[data-testid="needs-answer"]').attributes
    assert text_of(below, "conversation-waiting").startswith("waiting ")
    assert text_of(top, "conversation-assignee") == "Unassigned"
    assert [t.text() for t in top.css('[data-testid="tag"]')] == ["vip"]
    body = tree.css_first("body")
    assert body.attributes["data-operator-id"] == site.operator.operator.id
    assert tree.css_first('meta[name="csrf-token"]').attributes["content"]
    assert_inert(tree, own_scripts=1)


async def test_views_filter_by_assignee_status_channel_tag_and_text(site: Site) -> None:
    a = await site.receive("m1", "About the invoice", contact=InboundContact(external_id="c1", name="Ivan"))
    b = await site.receive("m2", "Delivery question", contact=InboundContact(external_id="c2", name="Pavel"))
    c = await site.receive("m3", "Refund please", contact=InboundContact(external_id="c3", name="Maria"))
    olga = site.operator.operator
    await site.inbox.service.update(a.conversation.id, olga, assignee_id=olga.id, tags=("billing",))
    await site.inbox.service.update(c.conversation.id, olga, status=ConversationStatus.RESOLVED)
    await site.sign_in(site.operator)

    async def ids(query: str) -> list[str]:
        _, tree = await site.page("/" + query)
        return [r.attributes["data-conversation-id"] for r in tree.css('[data-testid="conversation-row"]')]

    assert await ids("") == [b.conversation.id, a.conversation.id]
    assert await ids("?view=mine") == [a.conversation.id]
    assert await ids("?view=unassigned") == [b.conversation.id]
    assert await ids("?status=resolved") == [c.conversation.id]
    assert await ids("?status=any") == [c.conversation.id, b.conversation.id, a.conversation.id]
    assert await ids("?tag=billing") == [a.conversation.id]
    assert await ids(f"?channel={site.channel.id}&status=any") == [
        c.conversation.id,
        b.conversation.id,
        a.conversation.id,
    ]
    assert await ids("?q=deliv") == [b.conversation.id]
    _, tree = await site.page("/?view=mine")
    assert tree.css_first('[data-testid="view-mine"]').attributes.get("aria-current") == "page"
    assert tree.css_first('[data-testid="view-all"]').attributes["href"] == "/"
    for bad in ("?view=everything", "?status=closed", "?channel=x", "?cursor=%00", "?q=" + "x" * 201):
        _, tree = await site.page("/" + bad, status=400)
        assert tree.css_first('[data-testid="error-page"]') is not None


async def test_older_link_pages_through_the_list_with_the_cursor(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_list, "PAGE_SIZE", 2)
    received = [
        await site.receive(f"m{i}", contact=InboundContact(external_id=f"c{i}", name=f"N{i}")) for i in range(3)
    ]
    await site.sign_in(site.operator)
    _, tree = await site.page("/")
    assert len(tree.css('[data-testid="conversation-row"]')) == 2
    older = tree.css_first('[data-testid="older-link"]').attributes["href"]
    assert older is not None and older.startswith("/?cursor=")
    _, tree = await site.page(older)
    rows = tree.css('[data-testid="conversation-row"]')
    assert [r.attributes["data-conversation-id"] for r in rows] == [received[0].conversation.id]
    assert tree.css_first('[data-testid="older-link"]') is None
    assert tree.css_first('[data-testid="newest-link"]').attributes["href"] == "/"


async def test_focus_mode_shows_own_open_conversations_and_refuses_others_by_url(site: Site) -> None:
    olga = site.operator.operator
    mine = await site.receive("m1", contact=InboundContact(external_id="c1", name="Ivan"))
    other = await site.receive("m2", contact=InboundContact(external_id="c2", name="Pavel"))
    await site.inbox.service.update(mine.conversation.id, olga, assignee_id=olga.id)
    await site.inbox.service.update_operator(olga.id, olga, focus_mode=True)
    await site.sign_in(site.operator, accept_language="ru")
    _, tree = await site.page("/?view=all&status=any", accept_language="ru")
    assert [r.attributes["data-conversation-id"] for r in tree.css('[data-testid="conversation-row"]')] == [
        mine.conversation.id
    ]
    assert tree.css_first('[data-testid="focus-notice"]') is not None
    assert tree.css_first('[data-testid="view-all"]') is None
    await site.page(f"/conversations/{mine.conversation.id}", accept_language="ru")
    _, tree = await site.page(f"/conversations/{other.conversation.id}", status=403, accept_language="ru")
    assert text_of(tree, "error-detail") == "В режиме фокуса видны только диалоги, назначенные вам."
    await site.sign_in(site.admin)  # supervisors and admins are never held to focus mode
    await site.page(f"/conversations/{other.conversation.id}")


# one conversation


async def test_conversation_shows_each_kind_of_message_delivery_and_contact(site: Site) -> None:
    olga = site.operator.operator
    first = await site.receive(
        "m1",
        "Plain question",
        subject="Order 7",
        contact=InboundContact(external_id="c1", name="Ivan", email="ivan@example.com", phone="+7 900"),
    )
    conversation_id = first.conversation.id
    await site.inbox.service.note(conversation_id, olga, "Checking the warehouse")
    reply = await site.inbox.service.reply(conversation_id, olga, "It ships today")
    for _ in range(200):  # the dispatcher of the running app sends it
        if (await site.inbox.store.get_message(reply.message.id)).delivery_status is not DeliveryStatus.QUEUED:
            break
        await asyncio.sleep(0.01)
    await site.inbox.service.record_delivery(reply.message.id, DeliveryStatus.FAILED, "550 mailbox full")
    await site.inbox.service.auto_reply(conversation_id, "We got your message", trigger="test")
    await site.inbox.service.decide(conversation_id, reason="Routed by rule", priority=Priority.HIGH)
    await site.sign_in(site.operator)
    _, tree = await site.page(f"/conversations/{conversation_id}")
    styles = [m.attributes["data-message-style"] for m in tree.css('[data-testid="message"]')]
    assert styles == ["inbound", "note", "outbound", "auto_reply", "system"]
    outbound = tree.css('[data-testid="message"]')[2]
    assert outbound.css_first('[data-testid="delivery"]').attributes["data-delivery-status"] == "failed"
    assert text_of(outbound, "delivery-status") == "Not delivered"
    assert text_of(outbound, "delivery-error") == "550 mailbox full"
    assert text_of(tree, "message-author") == "Ivan"
    assert text_of(tree, "conversation-priority") == "High"
    assert text_of(tree, "contact-email") == "ivan@example.com"
    assert text_of(tree, "contact-phone") == "+7 900"
    assert [text_of(i, "contact-identity") for i in tree.css('[data-testid="contact-identity"]')] == ["API c1"]
    form = tree.css_first('[data-testid="reply-form"]')
    assert form.attributes["data-conversation-id"] == conversation_id
    assert tree.css_first("body").attributes["data-page"] == "conversation"
    await site.page("/conversations/01hzzzzzzzzzzzzzzzzzzzzzzz", status=404)
    await site.page("/conversations/not-an-id", status=404)


async def test_email_html_sits_in_a_sandboxed_frame_with_remote_images_held_back(site: Site) -> None:
    html = sanitize_html('<p>Hi <b>there</b><img src="https://tracker.example/p.gif"></p><script>alert(1)</script>')
    received = await site.receive("m1", "Hi there", html=html)
    await site.sign_in(site.operator)
    path = f"/conversations/{received.conversation.id}"
    _, tree = await site.page(path)
    frame = tree.css_first('iframe[data-testid="message-html"]')
    assert frame.attributes["sandbox"] in ("", None)  # present and empty: no scripts, no same origin
    document, headers = await site.frame(frame.attributes["src"])
    policy = document.css_first('meta[http-equiv="Content-Security-Policy"]').attributes["content"]
    assert policy == "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'"
    assert headers["Content-Security-Policy"] == f"{policy}; frame-ancestors 'self'; sandbox"
    assert document.css_first("b").text() == "there"
    assert document.css_first("img").attributes.get("src") is None
    assert_inert(document, own_scripts=0)
    assert tree.css_first('[data-testid="show-images"]').attributes["href"] == f"{path}?images=1"
    _, tree = await site.page(f"{path}?images=1")
    document, _ = await site.frame(tree.css_first('iframe[data-testid="message-html"]').attributes["src"])
    assert (
        "img-src https: data: cid:"
        in document.css_first('meta[http-equiv="Content-Security-Policy"]').attributes["content"]
    )
    assert document.css_first("img").attributes["src"] == "https://tracker.example/p.gif"
    assert tree.css_first('[data-testid="show-images"]') is None


async def test_hostile_text_subject_names_and_file_names_stay_text(site: Site) -> None:
    attachment = Attachment(filename=HOSTILE, content_type="text/html", size=2048, sha256="ab" * 32)
    received = await site.receive(
        "m1",
        HOSTILE,
        subject=HOSTILE,
        html=sanitize_html(HOSTILE + '<p><a href="javascript:alert(1)">x</a></p>'),
        attachments=(attachment,),
        contact=InboundContact(external_id="javascript:alert(1)", name=HOSTILE, email=HOSTILE, phone=IMG),
    )
    olga = site.operator.operator
    await site.inbox.service.note(received.conversation.id, olga, HOSTILE)
    await site.inbox.service.update(received.conversation.id, olga, tags=("javascript:alert(1)",))
    await site.receive("m2", HOSTILE, contact=InboundContact(external_id="c2", name=None))  # no subject: a preview
    await site.sign_in(site.operator)
    for path in ("/", f"/conversations/{received.conversation.id}"):
        text, tree = await site.page(path)
        assert_inert(tree, own_scripts=1)
        for raw in (SCRIPT, IMG, SVG, "<svg onload", LINK):
            assert raw not in text, (path, raw)
        assert text.count("<script") == 1
        for escaped in ESCAPED if path != "/" else ESCAPED[:1]:
            assert escaped in text, (path, escaped)
        for frame in tree.css("iframe"):
            assert_inert((await site.frame(frame.attributes["src"]))[0], own_scripts=0)
    link = tree.css_first('[data-testid="attachment-link"]')
    assert link.attributes["href"] == f"/api/v1/messages/{received.message.id}/attachments/{'ab' * 32}"
    assert link.text() == HOSTILE
    assert text_of(tree, "contact-name") == HOSTILE


# settings and administration


async def test_operator_language_and_time_zone_win_over_the_browser(site: Site) -> None:
    received = await site.receive("m1", "Hello", subject="Times")
    olga = await site.inbox.store.get_operator(site.operator.operator.id)
    await site.inbox.store.save_operator(replace(olga, locale="ru", time_zone="Asia/Tokyo"))
    await site.sign_in(site.operator)
    _, tree = await site.page(f"/conversations/{received.conversation.id}", accept_language="en-US,en")
    assert tree.css_first("html").attributes["lang"] == "ru"
    assert text_of(tree, "back-to-inbox") == "← Входящие"
    tokyo = received.message.created_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%H:%M") in text_of(tree, "message-time")
    assert tree.css_first("body").attributes["data-time-zone"] == "Asia/Tokyo"
    _, tree = await site.page("/settings", accept_language="en")
    assert tree.css_first('[data-testid="locale-select"] option[selected]').attributes["value"] == "ru"
    assert tree.css_first('[data-testid="time-zone-select"] option[selected]').attributes["value"] == "Asia/Tokyo"


async def test_without_a_setting_times_follow_the_browser_zone_cookie(site: Site) -> None:
    await site.sign_in(site.operator)
    site.client.session.cookie_jar.update_cookies({"inbox_browser_tz": "America/New_York"})
    _, tree = await site.page("/settings")
    assert tree.css_first("body").attributes["data-time-zone"] == "America/New_York"
    site.client.session.cookie_jar.update_cookies({"inbox_browser_tz": "../../etc/passwd"})
    _, tree = await site.page("/settings")
    assert tree.css_first("body").attributes["data-time-zone"] == "UTC"


async def test_password_change_form(site: Site) -> None:
    await site.sign_in(site.operator, accept_language="ru")
    token = await site.csrf()
    form = {CSRF_FIELD: token, "current_password": "nope", "new_password": "a new password 1", "confirm_password": "x"}
    response = await site.client.post("/settings/password", data=form, headers={"Accept-Language": "ru"})
    assert response.status == 400
    assert (
        text_of(LexborHTMLParser(await response.text()), "password-error") == "Новый пароль и его повтор не совпадают."
    )
    form["confirm_password"] = form["new_password"]
    response = await site.client.post("/settings/password", data=form, headers={"Accept-Language": "ru"})
    assert response.status == 403
    assert text_of(LexborHTMLParser(await response.text()), "password-error") == "Текущий пароль неверен."
    response = await site.client.post("/settings/password", data={**form, CSRF_FIELD: "forged"})
    assert response.status == 403
    form["current_password"] = PASSWORD
    response = await site.client.post("/settings/password", data=form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/settings?changed=password"
    _, tree = await site.page("/settings?changed=password")
    assert text_of(tree, "password-message") == "Your password was changed."


async def test_operators_page_is_for_admins_and_invites_with_a_password_shown_once(site: Site) -> None:
    await site.sign_in(site.operator)
    _, tree = await site.page("/admin/operators", status=403)
    assert tree.css_first('[data-testid="error-page"]').attributes["data-status"] == "403"
    assert tree.css_first('[data-testid="nav-operators"]') is None
    response = await site.client.post("/admin/operators", data={"email": "x@example.com", "name": "X"})
    assert response.status == 403

    await site.sign_in(site.admin)
    _, tree = await site.page("/admin/operators")
    names = {text_of(r, "operator-row").split()[0] for r in tree.css('[data-testid="operator-row"]')}
    assert {"Boss", "Olga"} <= names
    token = tree.css_first('meta[name="csrf-token"]').attributes["content"]
    invite = {"email": "new@example.com", "name": HOSTILE, "role": "supervisor"}
    response = await site.client.post("/admin/operators", data=invite)
    assert response.status == 403  # no CSRF token
    response = await site.client.post("/admin/operators", data={**invite, CSRF_FIELD: token})
    assert response.status == 201
    text = await response.text()
    tree = LexborHTMLParser(text)
    assert_inert(tree, own_scripts=1)
    password = text_of(tree, "generated-password")
    created = await site.inbox.store.operator_by_email("new@example.com")
    assert created is not None and created.role == Role.SUPERVISOR and created.name == HOSTILE
    response = await site.client.post(
        "/login",
        data={"email": "new@example.com", "password": password},
        headers={"Origin": site.origin},
        allow_redirects=False,
    )
    assert response.status == 303
    await site.sign_in(site.admin)
    text, tree = await site.page("/admin/operators")
    assert password not in text
    token = tree.css_first('meta[name="csrf-token"]').attributes["content"]  # a new session, a new token
    response = await site.client.post("/admin/operators", data={**invite, CSRF_FIELD: token})
    assert response.status == 409
    assert (
        text_of(LexborHTMLParser(await response.text()), "invite-error")
        == "An operator with this email exists already."
    )


async def test_page_token_works_for_the_scripts_api_calls(site: Site) -> None:
    """What app.js does: the CSRF token from the page's meta tag, the session cookie, JSON."""
    received = await site.receive("m1")
    await site.sign_in(site.operator)
    _, tree = await site.page(f"/conversations/{received.conversation.id}")
    token = tree.css_first('meta[name="csrf-token"]').attributes["content"] or ""
    url = f"/api/v1/conversations/{received.conversation.id}/messages"
    headers = {CSRF_HEADER: token, "Idempotency-Key": "3f0e2a9c-1d2b-4c3d-8e4f-5a6b7c8d9e0f"}
    response = await site.client.post(url, json={"text": "Hi", "kind": "reply"}, headers=headers)
    assert response.status == 201, await response.text()
    response = await site.client.post(url, json={"text": "Hi", "kind": "reply"}, headers=headers)
    assert response.status == 200  # replayed: the script keeps its key until it sees success
    response = await site.client.post(url, json={"text": "Hi"}, headers={"Idempotency-Key": "other"})
    assert response.status == 403


# static files, templates and catalogs


async def test_static_files_are_served_with_safe_headers(site: Site) -> None:
    await site.sign_in(site.operator)
    _, tree = await site.page("/settings")
    script = tree.css_first("script").attributes["src"] or ""
    style = tree.css_first('link[rel="stylesheet"]').attributes["href"] or ""
    assert script.startswith("/static/app.js?v=") and style.startswith("/static/app.css?v=")
    response = await site.client.get(script)
    assert response.status == 200 and response.content_type in ("application/javascript", "text/javascript")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    script_text = await response.text()
    assert not re.search(r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML|document\.write|\beval\(", script_text)
    response = await site.client.get(style)
    assert response.status == 200 and response.content_type == "text/css"


def test_templates_never_mark_anything_safe_nor_inline_script_or_style() -> None:
    for path in TEMPLATE_DIR.glob("*.html"):
        source = path.read_text()
        assert "|safe" not in source.replace(" ", "") and "Markup" not in source, path
        assert "autoescape false" not in source, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), path
        assert not re.search(r"\sstyle=", source) and "<style" not in source, path
        assert not re.search(r"\son[a-z]+=", source), path


def _catalog(locale: str) -> dict[str, str]:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=locale)
    return {str(m.id): str(m.string) for m in catalog if m.id}


def _used_msgids() -> set[str]:
    """Every msgid the templates and the Python page code use, found as ``pybabel extract`` would."""
    used: set[str] = set()
    for path in TEMPLATE_DIR.glob("*.html"):
        with path.open("rb") as source:
            used.update(
                str(msgid)
                for _, msgid, _, _ in extract(
                    jinja2.ext.babel_extract, source, options={"extensions": "jinja2.ext.i18n"}
                )
            )
    for path in [*(WEBUI / "pages").glob("*.py"), WEBUI / "i18n.py"]:
        with path.open("rb") as source:
            used.update(
                str(msgid) for _, msgid, _, _ in extract("python", source, keywords={"N_": None, "gettext": None})
            )
    return used


def test_catalogs_cover_every_message_and_russian_translates_them_all() -> None:
    used = _used_msgids()
    assert len(used) > 100
    catalogs = {locale: _catalog(locale) for locale in SUPPORTED_LOCALES}
    for locale, catalog in catalogs.items():
        assert not used - set(catalog), f"{locale}: msgids missing from the catalog"
        assert not set(catalog) - used, f"{locale}: msgids nothing uses any more"
    untranslated = sorted(msgid for msgid, text in catalogs["ru"].items() if not text.strip())
    assert not untranslated
    for msgid, text in catalogs["ru"].items():  # placeholders survive translation
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(re.findall(r"%\(\w+\)s", text)), msgid


def test_language_choice_prefers_the_setting_then_the_browser_then_english() -> None:
    assert choose_locale("ru", "en-US,en;q=0.9") == "ru"
    assert choose_locale(None, "de;q=1, ru-RU;q=0.8, en;q=0.5") == "ru"
    assert choose_locale("fr", "en;q=0.1, ru;q=0.9") == "ru"
    assert choose_locale(None, "ru;q=0, en") == "en"
    assert choose_locale(None, None) == "en"
    assert choose_locale(None, "x" * 5000 + ",,,;q=abc") == "en"
    assert parse_accept_language("en;q=0.5, ru") == ["ru", "en"]


async def test_conversation_lists_the_contacts_other_conversations(site: Site) -> None:
    first = await site.receive("m1", "Старый вопрос", subject="Счёт", thread_keys=("t1",))
    second = await site.receive("m2", "Новый вопрос", subject="Доставка", thread_keys=("t2",))
    stranger = await site.receive("m3", "Чужой", contact=InboundContact(external_id="c9", name="Пётр"))
    await site.sign_in(site.operator)
    _, tree = await site.page(f"/conversations/{second.conversation.id}")
    items = tree.css('[data-testid="history-item"]')
    assert [i.attributes["data-conversation-id"] for i in items] == [first.conversation.id]
    assert f"#{first.conversation.number} Счёт" in items[0].text()
    assert stranger.conversation.id not in {i.attributes["data-conversation-id"] for i in items}
