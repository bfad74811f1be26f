"""An operator's day in a real browser: sign in, a customer message arriving live without reload,
reply with its delivery status, a private note, assign, resolve; the page in Russian; a second
operator's page following along live. Screenshots of the inbox and a conversation, in English
and Russian, are written for the README."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from inbox.accounts import add_channel
from tests.browser.conftest import Site, screenshot, signed_in
from tests.fakes import RecordingConnector, inbound


async def test_message_arrives_live_then_reply_note_assign_resolve(browser: Browser, site: Site) -> None:
    olga = await signed_in(browser, site, site.operator)
    sam = await signed_in(browser, site, site.supervisor)
    for page in (olga, sam):
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        await expect(page.get_by_test_id("conversation-row")).to_have_count(0)

    pushed = await site.push("order-15-1", "Где мой заказ №15? Жду уже неделю.")
    for page in (olga, sam):  # no reload: the socket brings it
        row = page.get_by_test_id("conversation-row")
        await expect(row).to_have_count(1)
        await expect(row.get_by_test_id("conversation-contact")).to_have_text("Ирина")
    await expect(olga.get_by_test_id("needs-answer")).to_be_visible()
    await screenshot(olga, "inbox-en")

    await olga.get_by_test_id("conversation-link").click()
    await expect(olga.get_by_test_id("conversation-title")).to_be_visible()
    await expect(olga.get_by_test_id("message-text").first).to_have_text("Где мой заказ №15? Жду уже неделю.")

    await olga.get_by_test_id("assign-me").click()
    await expect(olga.get_by_test_id("conversation-assignee")).to_contain_text("Olga")
    await expect(sam.get_by_test_id("conversation-assignee")).to_contain_text("Olga")  # Sam's list follows

    await olga.get_by_test_id("reply-text").fill("Здравствуйте! Заказ уже у курьера.")
    await olga.get_by_test_id("reply-text").press("Control+Enter")
    outbound = olga.locator('[data-testid="message"][data-message-style="outbound"]')
    await expect(outbound).to_have_count(1)
    await expect(olga.get_by_test_id("needs-answer")).to_be_hidden()  # answered: the header follows live
    await expect(outbound.get_by_test_id("delivery")).to_have_attribute("data-delivery-status", "sent")

    await olga.get_by_test_id("reply-kind-note").check()
    await olga.get_by_test_id("reply-text").fill("Проверить трек завтра")
    await olga.get_by_test_id("reply-send").click()
    note = olga.locator('[data-testid="message"][data-message-style="note"]')
    await expect(note.get_by_test_id("message-text")).to_have_text("Проверить трек завтра")
    await screenshot(olga, "conversation-en")

    await olga.get_by_test_id("resolve").click()
    await expect(olga.get_by_test_id("conversation-status")).to_have_attribute("data-status", "resolved")
    conversation = await site.inbox.store.get_conversation(pushed["conversation_id"])
    assert conversation.status == "resolved" and conversation.assignee_id == site.operator.operator.id
    messages = (await site.inbox.store.list_messages(conversation.id, limit=20)).items
    kinds = [(m.kind, m.text) for m in messages if m.kind in ("message", "note")]
    assert kinds == [
        ("message", "Где мой заказ №15? Жду уже неделю."),
        ("message", "Здравствуйте! Заказ уже у курьера."),
        ("note", "Проверить трек завтра"),
    ]
    # the open list of the second operator drops the resolved conversation live
    await expect(sam.get_by_test_id("conversation-row")).to_have_count(0)

    # presence from the page: shown as stored (nobody set it yet), then set online over the socket
    await expect(olga.get_by_test_id("presence-select")).to_have_value("offline")
    await olga.get_by_test_id("presence-select").select_option("online")
    for _ in range(100):
        if (await site.inbox.store.get_operator(site.operator.operator.id)).presence == "online":
            break
        await olga.wait_for_timeout(20)
    assert (await site.inbox.store.get_operator(site.operator.operator.id)).presence == "online"


async def test_the_page_speaks_russian_when_the_operator_chooses_it(browser: Browser, site: Site) -> None:
    await site.push("m1", "Здравствуйте, не приходит письмо")
    page = await signed_in(browser, site, site.operator, locale="en-US")
    await expect(page.get_by_test_id("nav-inbox")).to_have_text("Inbox")
    await page.get_by_test_id("nav-settings").click()
    await page.get_by_test_id("locale-select").select_option("ru")
    await page.get_by_test_id("settings-save").click()
    await expect(page.locator("html")).to_have_attribute("lang", "ru")  # the page reloads in the new language
    await page.get_by_test_id("nav-inbox").click()
    await expect(page.get_by_test_id("nav-inbox")).to_have_text("Входящие")
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await screenshot(page, "inbox-ru")
    await page.get_by_test_id("conversation-link").click()
    await expect(page.get_by_test_id("reply-send")).to_have_text("Отправить")
    await screenshot(page, "conversation-ru")


async def test_a_browser_in_russian_gets_russian_before_any_setting(browser: Browser, site: Site) -> None:
    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    await page.goto(f"{site.url}/login")
    await expect(page.get_by_test_id("login-submit")).to_have_text("Войти")


async def test_a_failed_reply_shows_its_reason_and_resends_with_one_click(browser: Browser, site: Site) -> None:
    recorder = await add_channel(site.inbox.store, kind="test", name="Recorder")
    received = await site.inbox.service.receive(inbound(recorder.channel.id, "m1", text="Ответьте, пожалуйста"))
    RecordingConnector.failures, RecordingConnector.permanent = 1, True
    page = await signed_in(browser, site, site.operator)
    await page.goto(f"{site.url}/conversations/{received.conversation.id}")
    await page.get_by_test_id("reply-text").fill("Отвечаем")
    await page.get_by_test_id("reply-send").click()
    delivery = page.locator('[data-message-style="outbound"]').get_by_test_id("delivery")
    await expect(delivery).to_have_attribute("data-delivery-status", "failed")
    await expect(delivery.get_by_test_id("delivery-error")).to_have_text("peer unavailable")
    await delivery.get_by_test_id("resend").click()
    await expect(delivery).to_have_attribute("data-delivery-status", "delivered")
    await expect(delivery.get_by_test_id("resend")).to_be_hidden()
    assert [sent.message.text for sent in RecordingConnector.sent] == ["Отвечаем"]


async def test_usable_on_a_phone_width_screen(browser: Browser, site: Site) -> None:
    await site.push("m1", "Здравствуйте! Очень длинное сообщение " * 8)
    page = await signed_in(browser, site, site.operator, viewport={"width": 390, "height": 844})

    async def no_sideways_scroll() -> None:
        overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than the screen"

    await expect(page.get_by_test_id("conversation-row")).to_have_count(1)
    await no_sideways_scroll()
    await page.get_by_test_id("conversation-link").click()
    await expect(page.get_by_test_id("reply-text")).to_be_visible()
    await no_sideways_scroll()
    await page.get_by_test_id("reply-text").fill("Ответ с телефона")
    await page.get_by_test_id("reply-send").click()
    outbound = page.locator('[data-testid="message"][data-message-style="outbound"]')
    await expect(outbound.get_by_test_id("message-text")).to_have_text("Ответ с телефона")
