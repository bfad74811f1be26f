"""The web UI's security promises, checked in a real Chromium rather than by reading HTML.

Hostile content arrives through the paths a customer controls: the API channel (message text,
subject, contact name) and an email sent to the instance's SMTP intake (subject, From name, HTML
body, attachment names and contents), live over the socket and after a reload. Every page runs
twice: with the pages' Content-Security-Policy enforced, and with it bypassed, so that the
escaping is proved on its own and not hidden behind the CSP. Nothing may open a dialog, set
``window.__pwned``, leave an event handler or a ``javascript:`` URL in any frame's DOM, or make
the console report a script or event handler (even a blocked one: that would mean hostile markup
reached the DOM as markup). An HTML mail that skipped the sanitizer shows that the sandboxed frame
alone still holds.

CSRF: with the browser's own cookies (``context.request``) and from a page of a sibling origin
(same site, another port, so the ``SameSite=Lax`` cookie does travel), posts without the token are
refused and change nothing; with the page's token they are accepted.

Roles and focus mode: an operator gets the 403 page for the administrators' page, and in focus
mode for any conversation not assigned to them, opened by URL; the list shows only their own open
conversations.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Download, Frame, Page, expect
from playwright.async_api import Error as PlaywrightError

from inbox.accounts import NewOperator, add_channel
from inbox.domain import InboundContact, InboundMessage
from tests.browser.conftest import PASSWORD, Site, signed_in

SCRIPT = "<script>window.__pwned=1;alert('script')</script>"
IMG = "<img src=x onerror=\"window.__pwned=1;alert('img')\">"
LINK = "<a href=\"javascript:window.__pwned=1;alert('link')\">click</a>"
SVG = "<svg onload=\"window.__pwned=1;alert('svg')\"><script>window.__pwned=1</script></svg>"
HOSTILE = f"{SCRIPT} {IMG} {LINK} {SVG}"
HOSTILE_NAME = f"{IMG} {SCRIPT}"

EMAIL_HTML = (
    "<p>Hello from <b>Mallory</b>.</p>"
    + SCRIPT
    + IMG
    + "<p><a href=\"javascript:window.__pwned=1;alert('mail link')\">js link</a></p>"
    + SVG
    + '<p><a href="https://example.com/safe">safe link</a></p>'
    + '<p><a href="JaVaScRiPt&colon;window.__pwned=1">obfuscated link</a></p>'
    + "<iframe srcdoc=\"<script>parent.__pwned=1;alert('frame')</script>\"></iframe>"
    + '<form action="javascript:window.__pwned=1"><button>Send</button></form>'
    + "<details open ontoggle=\"window.__pwned=1;alert('toggle')\"><summary>details</summary></details>"
    + "<math><mtext><table><mglyph><style>"  # mutation XSS: a parser's second reading differs from its first
    + '<img src=x onerror="window.__pwned=1"></style></mglyph></table></mtext></math>'
    + '<noscript><p title="</noscript><img src=x onerror=window.__pwned=1>"></noscript>'
    + '<meta http-equiv="refresh" content="0;url=javascript:window.__pwned=1">'
)
SVG_NAME = "<img src=x onerror=window.__pwned=1>.svg"
SVG_FILE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=1;alert(\'svg file\')">'
    b"<script>window.__pwned=1;alert('svg script')</script></svg>"
)
HTML_NAME = "\"'><b onmouseover=window.__pwned=1>report.html"  # no "/": a path's last part is kept
HTML_FILE = b"<!doctype html><script>window.__pwned=1;alert('html file')</script><p>report</p>"

SUPPORT = "support@example.com"
MALLORY = "mallory@example.org"

INERT = """() => {
  const problems = [];
  const urls = new Set(["href", "src", "action", "formaction", "xlink:href", "data", "poster", "background"]);
  for (const node of document.querySelectorAll("*")) {
    for (const attribute of node.attributes) {
      const name = attribute.name.toLowerCase();
      if (name.startsWith("on")) problems.push(`${node.tagName} ${name}=${attribute.value}`);
      if (urls.has(name) && /^\\s*(javascript|vbscript|data:text\\/html)/i.test(attribute.value)) {
        problems.push(`${node.tagName} ${name}=${attribute.value}`);
      }
    }
  }
  for (const script of document.querySelectorAll("script")) {
    const own = /^\\/static\\/app\\.js\\?/.test(script.getAttribute("src") || "");
    if (!own) problems.push(script.outerHTML.slice(0, 120));
  }
  const live = "svg script, object, embed, base, meta[http-equiv='refresh' i], "
    + "iframe:not([data-testid='message-html'])";
  for (const node of document.querySelectorAll(live)) problems.push(node.outerHTML.slice(0, 120));
  return {problems: problems, pwned: typeof window.__pwned};
}"""

SCRIPT_SIGNS = re.compile(
    r"pwned|inline script|event handler|script execution|refused to (execute|run)|javascript url|'script-src",
    re.IGNORECASE,
)
"""A console message that says a script or handler ran or was stopped: either means hostile markup
became live markup somewhere."""

CSP_MODES = pytest.mark.parametrize("bypass_csp", [False, True], ids=["csp-enforced", "csp-bypassed"])


@dataclass
class Watch:
    """Everything a page (and its frames) does that would show a script ran."""

    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    @classmethod
    def on(cls, page: Page) -> Watch:
        watch = cls()

        async def dialog(opened: Any) -> None:
            watch.dialogs.append(f"{opened.type}: {opened.message}")
            await opened.dismiss()

        page.on("dialog", dialog)
        page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
        page.on("popup", lambda popup: watch.popups.append(popup.url))
        page.on("console", lambda message: watch.console.append(f"{message.type}: {message.text}"))
        return watch

    def assert_nothing_ran(self, *, blocked_scripts_expected: bool = False) -> None:
        assert self.dialogs == []
        assert self.page_errors == []
        assert self.popups == []
        if not blocked_scripts_expected:
            assert [m for m in self.console if SCRIPT_SIGNS.search(m)] == []


async def assert_inert(page: Page, *, frames_must_be_clean: bool = True) -> None:
    """No frame of the page has a live handler, script or ``javascript:`` URL, nor ``__pwned``.
    The sandboxed email frames run no script, but Playwright still reads their DOM."""
    result = await page.evaluate(INERT)
    assert result == {"problems": [], "pwned": "undefined"}, result
    for frame in page.frames:
        if frame is page.main_frame:
            continue
        result = await frame.evaluate(INERT)
        assert result["pwned"] == "undefined", (frame.url, result)
        if frames_must_be_clean:
            assert result["problems"] == [], (frame.url, result)


async def push(site: Site, external_id: str, text: str, *, contact: str, name: str, subject: str | None = None) -> str:
    """A customer message through the API channel; returns its conversation's id."""
    payload: dict[str, Any] = {"external_id": external_id, "contact": {"external_id": contact, "name": name}}
    payload |= {"text": text, "subject": subject}
    async with ClientSession() as http:
        response = await http.post(
            f"{site.url}/api/v1/inbound", json=payload, headers={"Authorization": f"Bearer {site.channel_key}"}
        )
        assert response.status == 201, await response.text()
        return str((await response.json())["conversation_id"])


async def api(site: Site, who: NewOperator, method: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A REST call with an operator's bearer token, as an integration makes it."""
    async with ClientSession() as http:
        response = await http.request(
            method, f"{site.url}{path}", json=payload, headers={"Authorization": f"Bearer {who.api_token}"}
        )
        assert response.status == 200, await response.text()
        return dict(await response.json())


# hostile content


def hostile_mail(message_id: str, *, from_header: str, in_reply_to: str | None = None) -> bytes:
    """A customer's mail with hostile subject, body, HTML and attachments; ``From`` is written
    raw (Python's header folding loses the quotes around a display name holding quotes)."""
    mail = EmailMessage()
    mail["To"] = SUPPORT
    mail["Subject"] = HOSTILE
    mail["Message-ID"] = message_id
    mail["Date"] = "Tue, 06 Jan 2026 09:30:00 +0300"
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(f"Plain part: {HOSTILE}\n", cte="quoted-printable")
    mail.add_alternative(EMAIL_HTML, subtype="html", cte="quoted-printable")
    # RFC 2231 names (filename*=utf-8''…), as a mail client writes non-trivial ones
    mail.add_attachment(SVG_FILE, maintype="image", subtype="svg+xml", filename=("utf-8", "", SVG_NAME))
    mail.add_attachment(HTML_FILE, maintype="text", subtype="html", filename=("utf-8", "", HTML_NAME))
    return f"From: {from_header}\r\n".encode() + mail.as_bytes(policy=SMTP_POLICY)


def quoted_from(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{MALLORY}>'


def encoded_from(name: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(name.encode()).decode() + f"?= <{MALLORY}>"


async def send_mail(site: Site, raw: bytes) -> None:
    """Through the instance's own SMTP intake, as the customer's mail server delivers it."""
    smtp = site.inbox.smtp
    assert smtp is not None

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
            client.sendmail(MALLORY, [SUPPORT], raw)

    await asyncio.to_thread(send)


async def check_attachment(page: Page, site: Site, name: str, content: bytes) -> None:
    """Clicking the link downloads the file; the answer forbids rendering it; opened by URL in a
    tab of its own it still downloads rather than displays."""
    link = page.get_by_test_id("attachment-link").filter(has_text=name).first
    await expect(link).to_have_text(name)
    assert await link.get_attribute("download") == name
    await link.hover()  # a name that became markup would have its onmouseover now
    href = await link.get_attribute("href")
    assert href is not None and href.startswith("/api/v1/messages/")
    async with page.expect_download() as clicked:
        await link.click()
    download: Download = await clicked.value
    assert download.url == f"{site.url}{href}"
    assert "/" not in download.suggested_filename and "\\" not in download.suggested_filename

    response = await page.context.request.get(f"{site.url}{href}")
    assert response.status == 200
    headers = response.headers
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].startswith("attachment;")
    assert headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in headers["content-security-policy"]
    assert await response.body() == content

    tab = await page.context.new_page()
    watch = Watch.on(tab)
    async with tab.expect_download() as opened:
        with contextlib.suppress(PlaywrightError):  # "Download is starting": no page was rendered
            await tab.goto(f"{site.url}{href}")
    await opened.value
    assert await tab.evaluate("typeof window.__pwned") == "undefined"
    watch.assert_nothing_ran()
    await tab.close()


async def click_everything(page: Page, frame: Frame, *, unsanitized: bool = False) -> None:
    """Clicks every visible link and button of an email frame: none may run a script, open a
    window, submit a form, or take the page (or the frame) anywhere. ``unsanitized``: the frame's
    HTML skipped the sanitizer, so ``javascript:`` links are there to be clicked; its plain links
    are left alone (without the sanitizer's ``target="_blank"`` they navigate the frame itself,
    which stays sandboxed)."""
    url = page.url
    targets = frame.locator("a[target='_top'], a[href^='javascript' i], button" if unsanitized else "a, button")
    for index in range(await targets.count()):
        target = targets.nth(index)
        href = await target.get_attribute("href")
        if not unsanitized:
            assert href is None or not href.strip().lower().startswith("javascript:"), href
        if await target.is_visible():
            await target.click(timeout=5000)
    await page.wait_for_timeout(300)
    assert page.url == url
    assert "/messages/" in frame.url and frame.url.split("?")[0].endswith("/frame")


@CSP_MODES
async def test_hostile_api_messages_and_names_render_as_text(browser: Browser, site: Site, bypass_csp: bool) -> None:
    page = await signed_in(browser, site, site.operator, bypass_csp=bypass_csp)
    watch = Watch.on(page)
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")

    # arriving live: the list's script builds the rows
    first = await push(site, "h1", HOSTILE, contact="c1", name=HOSTILE_NAME)
    second = await push(site, "h2", "Order question", contact="c2", name=HOSTILE, subject=HOSTILE)
    rows = page.get_by_test_id("conversation-row")
    await expect(rows).to_have_count(2)
    live_first = page.locator(f'[data-testid="conversation-row"][data-conversation-id="{first}"]')
    await expect(live_first.get_by_test_id("conversation-contact")).to_have_text(HOSTILE_NAME)
    live_second = page.locator(f'[data-testid="conversation-row"][data-conversation-id="{second}"]')
    await expect(live_second.get_by_test_id("conversation-contact")).to_have_text(HOSTILE)
    await expect(live_second.get_by_test_id("conversation-subject")).to_have_text(HOSTILE)
    await assert_inert(page)

    # rendered by the server
    await page.reload()
    row = page.locator(f'[data-testid="conversation-row"][data-conversation-id="{first}"]')
    await expect(row.get_by_test_id("conversation-contact")).to_have_text(HOSTILE_NAME)
    preview = HOSTILE[:139] + "…"  # no subject: the first line of the text, cut
    await expect(row.get_by_test_id("conversation-subject")).to_have_text(preview)
    row = page.locator(f'[data-testid="conversation-row"][data-conversation-id="{second}"]')
    await expect(row.get_by_test_id("conversation-subject")).to_have_text(HOSTILE)
    await assert_inert(page)

    await page.locator(f'[data-conversation-id="{second}"] [data-testid="conversation-link"]').click()
    await expect(page.get_by_test_id("conversation-subject")).to_have_text(HOSTILE)
    await expect(page).to_have_title(f"{HOSTILE} · Inbox")
    await expect(page.get_by_test_id("contact-name")).to_have_text(HOSTILE)
    await expect(page.get_by_test_id("message-author").first).to_have_text(HOSTILE)
    await expect(page.get_by_test_id("message-text").first).to_have_text("Order question")

    # a second hostile message arrives while the conversation is open: the script appends it
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    await push(site, "h3", HOSTILE, contact="c2", name=HOSTILE)
    texts = page.get_by_test_id("message-text")
    await expect(texts).to_have_count(2)
    await expect(texts.nth(1)).to_have_text(HOSTILE)
    await expect(page.get_by_test_id("message-author").nth(1)).to_have_text(HOSTILE)
    # the operator's own note, with the same payload, through the reply form
    await page.get_by_test_id("reply-kind-note").check()
    await page.get_by_test_id("reply-text").fill(HOSTILE)
    await page.get_by_test_id("reply-send").click()
    note = page.locator('[data-testid="message"][data-message-style="note"]')
    await expect(note.get_by_test_id("message-text")).to_have_text(HOSTILE)
    assert await page.get_by_test_id("message-list").locator(".msg-text a, .msg-text img, .msg-text svg").count() == 0
    await assert_inert(page)

    await page.reload()  # the same conversation, rendered by the server
    await expect(page.get_by_test_id("message-text")).to_have_text(["Order question", HOSTILE, HOSTILE])
    assert await page.locator(".msg-text a, .msg-text img, .msg-text svg, .msg-text script").count() == 0
    await assert_inert(page)

    await page.goto(f"{site.url}/conversations/{first}")  # no subject: the contact's name is the title
    await expect(page).to_have_title(f"{HOSTILE_NAME} · Inbox")
    await expect(page.get_by_test_id("conversation-subject")).to_have_text(HOSTILE_NAME)
    await expect(page.get_by_test_id("message-text")).to_have_text(HOSTILE)
    await assert_inert(page)
    watch.assert_nothing_ran()


@CSP_MODES
async def test_hostile_email_through_smtp_renders_inert(browser: Browser, site: Site, bypass_csp: bool) -> None:
    await add_channel(site.inbox.store, kind="email", name="Support", settings={"address": SUPPORT})
    page = await signed_in(browser, site, site.operator, bypass_csp=bypass_csp)
    watch = Watch.on(page)
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")

    await send_mail(site, hostile_mail("<m1@example.org>", from_header=quoted_from(HOSTILE_NAME)))
    row = page.get_by_test_id("conversation-row")
    await expect(row).to_have_count(1)  # live
    await expect(row.get_by_test_id("conversation-contact")).to_have_text(HOSTILE_NAME)
    await expect(row.get_by_test_id("conversation-subject")).to_have_text(HOSTILE)
    await assert_inert(page)
    await page.reload()
    await expect(row.get_by_test_id("conversation-contact")).to_have_text(HOSTILE_NAME)
    await expect(row.get_by_test_id("conversation-subject")).to_have_text(HOSTILE)
    await expect(row.get_by_test_id("channel-badge")).to_have_attribute("data-channel-kind", "email")
    await assert_inert(page)

    await page.get_by_test_id("conversation-link").click()
    await expect(page.get_by_test_id("conversation-subject")).to_have_text(HOSTILE)
    await expect(page.get_by_test_id("contact-name")).to_have_text(HOSTILE_NAME)
    await expect(page.get_by_test_id("contact-email")).to_have_text(MALLORY)
    await expect(page.get_by_test_id("message-author")).to_have_text(HOSTILE_NAME)
    await expect(page.get_by_test_id("attachment-link")).to_have_text([SVG_NAME, HTML_NAME])

    # the HTML part, sanitized at intake, in its sandboxed frame
    frame_element = page.get_by_test_id("message-html")
    await expect(frame_element).to_have_attribute("sandbox", "")
    frame = await (await frame_element.element_handle()).content_frame()
    assert frame is not None
    await expect(frame.get_by_text("Hello from Mallory.")).to_be_visible()
    await expect(frame.get_by_text("safe link")).to_be_visible()
    js_link = frame.get_by_text("js link")
    await expect(js_link).to_be_visible()  # its text stays, its javascript: URL does not
    assert await js_link.get_attribute("href") is None
    await click_everything(page, frame)

    # the plain part, as text
    await page.locator(".msg-plain summary").click()
    await expect(page.get_by_test_id("message-text")).to_contain_text(HOSTILE)
    await assert_inert(page)

    await check_attachment(page, site, SVG_NAME, SVG_FILE)
    await check_attachment(page, site, HTML_NAME, HTML_FILE)

    # an answer in the thread arrives while the conversation is open (the From name as RFC 2047)
    await send_mail(
        site,
        hostile_mail("<m2@example.org>", from_header=encoded_from(HOSTILE_NAME), in_reply_to="<m1@example.org>"),
    )
    messages = page.get_by_test_id("message")
    await expect(messages).to_have_count(2)
    appended = messages.nth(1)
    await expect(appended.get_by_test_id("message-author")).to_have_text(HOSTILE_NAME)
    await expect(appended.get_by_test_id("message-text")).to_contain_text(HOSTILE)
    await expect(appended.get_by_test_id("attachment-link")).to_have_text([SVG_NAME, HTML_NAME])
    assert await appended.get_by_test_id("attachment-link").first.get_attribute("download") == SVG_NAME
    await assert_inert(page)

    await page.reload()
    await expect(page.get_by_test_id("message-html")).to_have_count(2)
    for frame_element in await page.get_by_test_id("message-html").element_handles():
        frame = await frame_element.content_frame()
        assert frame is not None
        await click_everything(page, frame)
    await assert_inert(page)
    assert page.url.startswith(f"{site.url}/conversations/")
    watch.assert_nothing_ran()


RAW_HTML = (
    '<p><a href="https://example.com/away" target="_top">top link</a></p>'
    '<form method="post" action="/logout" target="_top"><input type="hidden" name="csrf" value="x">'
    "<button>Sign out</button></form>"
    "<p><a href=\"javascript:window.__pwned=1;alert('raw link')\">raw js link</a></p>" + EMAIL_HTML
)


@CSP_MODES
async def test_unsanitized_html_is_still_held_by_the_sandboxed_frame(
    browser: Browser, site: Site, bypass_csp: bool
) -> None:
    """A connector that forgot to sanitize: the frame (no scripts, no forms, no popups, no top
    navigation, an opaque origin) is the wall left, and it holds."""
    (channel,) = await site.inbox.store.list_channels()
    received = await site.inbox.service.receive(
        InboundMessage(
            channel_id=channel.id,
            external_id="raw-1",
            contact=InboundContact(external_id="c1", name="Mallory"),
            text="raw",
            html=RAW_HTML,
        )
    )
    page = await signed_in(browser, site, site.operator, bypass_csp=bypass_csp)
    watch = Watch.on(page)
    await page.goto(f"{site.url}/conversations/{received.conversation.id}")
    frame = await (await page.get_by_test_id("message-html").element_handle()).content_frame()
    assert frame is not None
    await expect(frame.get_by_text("raw js link")).to_be_visible()
    assert await frame.locator("script").count() > 0  # the hostile markup really is there
    await click_everything(page, frame, unsanitized=True)
    await assert_inert(page, frames_must_be_clean=False)  # nothing ran in any frame, nested ones too
    assert len(page.frames) > 2
    await page.reload()  # the sandboxed form did not sign the operator out
    await expect(page.get_by_test_id("operator-name")).to_have_text("Olga")
    # the console reports the frame's blocked scripts: that is the sandbox working
    watch.assert_nothing_ran(blocked_scripts_expected=True)


# CSRF


async def csrf_token(page: Page) -> str:
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    return token


async def password_hash(site: Site) -> str | None:
    return (await site.inbox.store.get_operator(site.operator.operator.id)).password_hash


async def notes(site: Site, conversation_id: str) -> list[str]:
    messages = (await site.inbox.store.list_messages(conversation_id, limit=50)).items
    return [m.text for m in messages if m.kind == "note"]


NEW_PASSWORD = "another horse battery"


async def test_posts_with_the_browsers_cookies_but_without_the_token_are_refused(browser: Browser, site: Site) -> None:
    conversation_id = await push(site, "m1", "Hello", contact="c1", name="Ivan")
    page = await signed_in(browser, site, site.operator)
    await page.goto(f"{site.url}/conversations/{conversation_id}")
    token = await csrf_token(page)
    request = page.context.request  # the browser context's own cookie jar
    messages = f"{site.url}/api/v1/conversations/{conversation_id}/messages"

    for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": token + "x"}):
        response = await request.post(messages, data={"text": "forged", "kind": "note"}, headers=headers)
        assert response.status == 403, headers  # 403, not 401: the cookie came, the token did not
        assert (await response.json())["error"]["code"] == "csrf_failed"
    response = await request.patch(f"{site.url}/api/v1/conversations/{conversation_id}", data={"status": "resolved"})
    assert response.status == 403
    response = await request.post(
        messages, data={"text": "by the page", "kind": "note"}, headers={"X-CSRF-Token": token}
    )
    assert response.status == 201
    assert await notes(site, conversation_id) == ["by the page"]

    before = await password_hash(site)
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    for forged in ({}, {"csrf": ""}, {"csrf": "forged"}):
        response = await request.post(f"{site.url}/settings/password", form={**change, **forged}, max_redirects=0)
        assert response.status == 403
        assert 'data-status="403"' in await response.text()
        response = await request.post(f"{site.url}/logout", form={"next": "/", **forged}, max_redirects=0)
        assert response.status == 403  # a missing session would be a 303 to /login
    assert await password_hash(site) == before

    # signing in from another site (the browser's session would become the attacker's)
    sam = {"email": site.supervisor.operator.email, "password": PASSWORD, "next": "/"}
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
        response = await request.post(f"{site.url}/login", form=sam, headers={"Origin": origin}, max_redirects=0)
        assert response.status == 403, origin
    await page.goto(f"{site.url}/settings")
    await expect(page.get_by_test_id("operator-name")).to_have_text("Olga")  # still Olga, still signed in

    # with the page's token, the same forms are accepted
    token = await csrf_token(page)
    response = await request.post(f"{site.url}/settings/password", form={**change, "csrf": token}, max_redirects=0)
    assert response.status == 303 and response.headers["location"] == "/settings?changed=password"
    assert await password_hash(site) != before
    response = await request.post(f"{site.url}/logout", form={"csrf": token}, max_redirects=0)
    assert response.status == 303 and response.headers["location"] == "/login"
    await page.goto(f"{site.url}/")
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    # and a sign-in from the site's own origin is accepted
    fresh = await browser.new_context()
    response = await fresh.request.post(f"{site.url}/login", form=sam, headers={"Origin": site.url}, max_redirects=0)
    assert response.status == 303
    await fresh.close()


ATTACKER_PAGE = """<!doctype html><title>Win a prize</title>
<form id="logout" method="post" action="{inbox}/logout"><button>logout</button></form>
<form id="password" method="post" action="{inbox}/settings/password">
  <input name="current_password" value="{password}"><input name="new_password" value="{new}">
  <input name="confirm_password" value="{new}"><button>password</button></form>
<form id="note" method="post" action="{inbox}/api/v1/conversations/{conversation}/messages" enctype="text/plain">
  <input name='{{"kind":"note","text":"forged by a form","x":"' value='"}}'><button>note</button></form>
<form id="login" method="post" action="{inbox}/login">
  <input name="email" value="{attacker}"><input name="password" value="{password}"><button>login</button></form>
"""

FETCH = """async ([url, headers, mode]) => {
  try {
    const body = JSON.stringify({text: "forged by a script", kind: "note"});
    await fetch(url, {method: "POST", mode: mode, credentials: "include", headers: headers, body: body});
    return "sent";
  } catch (error) {
    return "failed: " + error;
  }
}"""


async def test_a_sibling_origins_page_cannot_post_for_the_operator(browser: Browser, site: Site) -> None:
    """The attacker's page is on another port of the same host: another origin of the same site,
    so the browser does send the ``SameSite=Lax`` cookie, and only the token stands in the way."""
    conversation_id = await push(site, "m1", "Hello", contact="c1", name="Ivan")
    page = await signed_in(browser, site, site.operator)
    before = await password_hash(site)
    html = ATTACKER_PAGE.format(
        inbox=site.url,
        conversation=conversation_id,
        password=PASSWORD,
        new=NEW_PASSWORD,
        attacker=site.supervisor.operator.email,
    )

    async def serve(_: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    attacker = web.Application()
    attacker.router.add_get("/", serve)
    server = TestServer(attacker, host="127.0.0.1")
    await server.start_server()
    try:
        evil_url = str(server.make_url("/"))
        assert evil_url.split(":")[2] != site.url.split(":")[2]
        evil = await page.context.new_page()
        watch = Watch.on(evil)
        refusals = {
            "logout": "This form has expired. Reload the page and try again.",  # the cookie came
            "password": "This form has expired. Reload the page and try again.",
            "login": "This form was sent from another site.",
        }
        for form, detail in refusals.items():
            await evil.goto(evil_url)
            async with evil.expect_navigation() as navigation:
                await evil.locator(f"#{form} button").click()
            response = await navigation.value
            assert response is not None and response.status == 403, form
            await expect(evil.get_by_test_id("error-page")).to_have_attribute("data-status", "403")
            await expect(evil.get_by_test_id("error-detail")).to_have_text(detail)
        await evil.goto(evil_url)
        async with evil.expect_navigation() as navigation:
            await evil.locator("#note button").click()
        response = await navigation.value
        assert response is not None and response.status == 403
        assert (await response.json())["error"]["code"] == "csrf_failed"

        messages = f"{site.url}/api/v1/conversations/{conversation_id}/messages"
        await evil.goto(evil_url)
        simple = await evil.evaluate(FETCH, [messages, {"Content-Type": "text/plain"}, "no-cors"])
        assert simple == "sent"  # it went out with the cookie, and was refused for want of the token
        guessed = {"Content-Type": "application/json", "X-CSRF-Token": "guessed"}
        preflighted = await evil.evaluate(FETCH, [messages, guessed, "cors"])
        assert preflighted.startswith("failed")  # a custom header needs CORS, which the API never grants
        watch.assert_nothing_ran()
    finally:
        await server.close()

    assert await notes(site, conversation_id) == []
    assert await password_hash(site) == before
    await page.reload()  # still signed in, and still as Olga, not as the attacker
    await expect(page.get_by_test_id("operator-name")).to_have_text("Olga")


# roles and focus mode


async def expect_refused(page: Page, url: str) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == 403, url
    await expect(page.get_by_test_id("error-page")).to_have_attribute("data-status", "403")


async def test_only_administrators_open_the_operators_page(browser: Browser, site: Site) -> None:
    for who in (site.operator, site.supervisor):
        page = await signed_in(browser, site, who)
        await expect(page.get_by_test_id("nav-operators")).to_have_count(0)
        await expect_refused(page, f"{site.url}/admin/operators")
        await expect(page.get_by_test_id("operators-table")).to_have_count(0)
        await expect(page.get_by_test_id("invite-form")).to_have_count(0)
        await page.context.close()
    page = await signed_in(browser, site, site.admin)
    await page.get_by_test_id("nav-operators").click()
    await expect(page.get_by_test_id("operators-table")).to_be_visible()
    await expect(page.locator(f'[data-operator-id="{site.operator.operator.id}"]')).to_be_visible()


async def focus(site: Site, how: str) -> None:
    """Olga in focus mode: her own setting, or enforced by a team she belongs to."""
    olga = site.operator.operator
    if how == "own-setting":
        focused = await api(site, site.admin, "PATCH", f"/api/v1/operators/{olga.id}", {"focus_mode": True})
        assert focused["focus_mode"] is True
    else:
        team = {"id": "front-line", "name": "Front line", "focus_mode": True}
        await api(site, site.admin, "PUT", "/api/v1/routing/teams/front-line", team)
        member = await api(site, site.admin, "PATCH", f"/api/v1/operators/{olga.id}", {"teams": ["front-line"]})
        assert member["focus_mode"] is False and member["teams"] == ["front-line"]


@pytest.mark.parametrize("how", ["own-setting", "team-enforced"])
async def test_focus_mode_holds_by_url(browser: Browser, site: Site, how: str) -> None:
    olga, sam = site.operator.operator, site.supervisor.operator
    own = await push(site, "f1", "Mine to answer", contact="c1", name="Own customer")
    others = await push(site, "f2", "Sam's to answer", contact="c2", name="Sam's customer")
    unassigned = await push(site, "f3", "Nobody's yet", contact="c3", name="Waiting customer")
    done = await push(site, "f4", "Already solved", contact="c4", name="Happy customer")
    for conversation, changes in (
        (own, {"assignee_id": olga.id}),
        (others, {"assignee_id": sam.id}),
        (done, {"assignee_id": olga.id, "status": "resolved"}),
    ):
        await api(site, site.supervisor, "PATCH", f"/api/v1/conversations/{conversation}", changes)
    await focus(site, how)

    page = await signed_in(browser, site, site.operator)
    await expect(page.get_by_test_id("focus-notice")).to_be_visible()
    rows = page.get_by_test_id("conversation-row")
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-conversation-id", own)
    await page.goto(f"{site.url}/?view=all&status=any")  # a URL asking for more changes nothing
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-conversation-id", own)

    for conversation in (others, unassigned):
        await expect_refused(page, f"{site.url}/conversations/{conversation}")
        await expect(page.get_by_test_id("message-list")).to_have_count(0)
        for path in (f"/api/v1/conversations/{conversation}", f"/api/v1/conversations/{conversation}/messages"):
            response = await page.context.request.get(f"{site.url}{path}")
            assert response.status == 403, path
    await expect_refused(page, f"{site.url}/admin/operators")
    await page.goto(f"{site.url}/conversations/{own}")
    await expect(page.get_by_test_id("message-text")).to_have_text("Mine to answer")

    # Sam, a supervisor, is never held to focus mode
    page = await signed_in(browser, site, site.supervisor)
    await page.goto(f"{site.url}/conversations/{unassigned}")
    await expect(page.get_by_test_id("message-text")).to_have_text("Nobody's yet")


async def test_focus_mode_also_refuses_writes_to_conversations_it_hides(browser: Browser, site: Site) -> None:
    olga, sam = site.operator.operator, site.supervisor.operator
    others = await push(site, "f2", "Sam's to answer", contact="c2", name="Sam's customer", subject="Refund")
    await api(site, site.supervisor, "PATCH", f"/api/v1/conversations/{others}", {"assignee_id": sam.id})
    await focus(site, "own-setting")
    page = await signed_in(browser, site, site.operator)
    await expect_refused(page, f"{site.url}/conversations/{others}")  # reading it is refused
    token = {"X-CSRF-Token": await csrf_token(page)}
    request = page.context.request
    conversation = f"{site.url}/api/v1/conversations/{others}"
    statuses = {
        "empty patch (a read)": (await request.patch(conversation, data={}, headers=token)).status,
        "note": (
            await request.post(f"{conversation}/messages", data={"text": "n", "kind": "note"}, headers=token)
        ).status,
        "reply": (
            await request.post(f"{conversation}/messages", data={"text": "r", "kind": "reply"}, headers=token)
        ).status,
        "resolve": (await request.patch(conversation, data={"status": "resolved"}, headers=token)).status,
        "tags": (await request.patch(conversation, data={"tags": ["olga-was-here"]}, headers=token)).status,
    }
    stored = await site.inbox.store.get_conversation(others)
    written = [m.text for m in (await site.inbox.store.list_messages(others, limit=20)).items if m.author_id == olga.id]
    assert (statuses, stored.status, stored.tags, written) == (
        dict.fromkeys(statuses, 403),
        "open",
        (),
        [],
    )
