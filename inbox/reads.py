"""The read side of the inbox: what the web layer shows and whom it lets in.

Every answer is durable: reads may see a group commit still in flight, so each method awaits
:meth:`storage.base.Store.durable` before returning (a no-op when nothing is in flight).
"""

from __future__ import annotations

from dataclasses import dataclass

from inbox.domain import Channel, Contact, Conversation, Message, Operator, Unparsed
from inbox.ids import hash_secret
from storage.base import ConversationFilter, Page, Store

__all__ = ["ConversationFilter", "InboxReads", "Listed", "Page"]


@dataclass(frozen=True, slots=True)
class Listed:
    """A page of conversations with the names of their contacts, for list views."""

    page: Page[Conversation]
    contact_names: dict[str, str | None]


class InboxReads:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def ping(self) -> None:
        await self._store.ping()

    async def conversations(self, where: ConversationFilter, *, limit: int, cursor: str | None) -> Listed:
        page = await self._store.list_conversations(where, limit=limit, cursor=cursor)
        names = await self._store.contact_names({c.contact_id for c in page.items})
        await self._store.durable()
        return Listed(page, names)

    async def conversation(self, conversation_id: str) -> tuple[Conversation, Contact]:
        conversation = await self._store.get_conversation(conversation_id)
        contact = await self._store.get_contact(conversation.contact_id)
        await self._store.durable()
        return conversation, contact

    async def messages(self, conversation_id: str, *, limit: int, cursor: str | None = None) -> Page[Message]:
        await self._store.get_conversation(conversation_id)  # NotFound for an unknown conversation
        page = await self._store.list_messages(conversation_id, limit=limit, cursor=cursor)
        await self._store.durable()
        return page

    async def message(self, message_id: str) -> Message:
        message = await self._store.get_message(message_id)
        await self._store.durable()
        return message

    async def contacts(self, *, limit: int, cursor: str | None, text: str | None) -> Page[Contact]:
        page = await self._store.list_contacts(limit=limit, cursor=cursor, text=text)
        await self._store.durable()
        return page

    async def contact(self, contact_id: str) -> Contact:
        contact = await self._store.get_contact(contact_id)
        await self._store.durable()
        return contact

    async def operators(self) -> list[Operator]:
        operators = await self._store.list_operators()
        await self._store.durable()
        return operators

    async def channels(self) -> list[Channel]:
        channels = await self._store.list_channels()
        await self._store.durable()
        return channels

    async def quarantine(self, *, limit: int, cursor: str | None) -> Page[Unparsed]:
        page = await self._store.list_quarantine(limit=limit, cursor=cursor)
        await self._store.durable()
        return page

    async def unparsed(self, unparsed_id: str) -> Unparsed:
        record = await self._store.get_unparsed(unparsed_id)
        await self._store.durable()
        return record

    async def operator_by_token(self, token: str) -> Operator | None:
        return await self._store.operator_by_token(hash_secret(token))

    async def channel_by_key(self, key: str) -> Channel | None:
        return await self._store.channel_by_secret(hash_secret(key))
