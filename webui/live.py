"""Live updates: every bus event, as a numbered JSON frame, pushed to every open page.

Protocol on ``GET /api/v1/ws`` (the operator authenticates as for the REST API):

- client ``{"type": "hello", "after": <last seq> | null, "stream": <id> | null}`` starts the
  stream. The server first replays every buffered frame with ``seq > after`` that the operator may
  see, then answers ``{"type": "ready", "seq": S, "stream": id}``; when it cannot replay (``after``
  is older than the buffer, ahead of the server, or from another ``stream``, i.e. before a
  restart) it answers ``{"type": "reset", "seq": S, "stream": id}`` instead and the page reloads
  its state over REST. Live frames with ``seq > S`` follow either answer.
- frames ``{"seq": N, "type": <event type>, ...}`` carry ``conversation`` (ConversationOut),
  ``message`` (MessageOut), ``changed``/``actor_id`` for conversation updates, or ``operator``
  (OperatorOut). A page keeps the highest ``seq`` it has seen (ready's included) to resume from;
  seqs a page does not see (filtered out) are covered by ``ready.seq``.
- client ``{"type": "presence", "presence": "online" | "away" | "offline"}`` sets the operator's presence;
  ``{"type": "ping"}`` → ``{"type": "pong"}``; anything else → ``{"type": "error", "code",
  "message"}``, and the connection stays open.
- focus mode (an operator, not a supervisor, for whom ``Router.in_focus`` holds) narrows frames
  to conversations assigned to them or just handed away from them, plus every ``operator.updated``
  (the operator list is every operator's to read). A conversation handed to them arrives with the
  ``conversation.updated`` that assigns it; the page loads its messages over REST.
- a fresh page opens the socket and says hello with ``after: null`` before loading over REST:
  frames carry whole states, so one the REST answer already reflects is harmless to apply.
- the server closes with 4000 when a page falls more than ``send_queue`` frames behind (it
  reconnects and resumes), or opened while a frame nobody was watching for was still pending (it
  reconnects and reloads), 4001 when its credentials stopped working, 1001 on shutdown, 1009 for
  an oversized client message.

The bus awaits subscribers in order, and routing publishes its decisions from inside its own
subscriber call, so events reach this hub out of order (#3 before #2): the hub releases them in
sequence order, and skips a number that has not arrived after ``gap_timeout`` (its publisher was
cancelled; should it come later, it still goes out, out of order). Fan-out never awaits: each
connection has a bounded queue and its own writer task.

Frames are built only while a page is open, and for ``idle_grace`` seconds after the last one
closed (so a page that reconnects resumes): with nobody watching, intake does not pay for
serializing, and a page that comes back later gets ``reset``, as after the buffer ran out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from inbox.domain import Conversation, Operator, Presence, Role
from inbox.errors import InboxError
from inbox.events import (
    ConversationCreated,
    ConversationUpdated,
    DeliveryUpdated,
    Event,
    EventBus,
    MessageCreated,
    OperatorUpdated,
)
from inbox.reads import InboxReads
from routing.router import Router
from webui.api.schemas import ConversationOut, MessageOut, OperatorOut
from webui.auth import operator_for
from webui.errors import ApiError
from webui.keys import OPERATOR_TOKENS, ROUTER, SERVICE, SESSIONS

__all__ = ["CLOSE_LAGGING", "CLOSE_UNAUTHORIZED", "LIVE", "PATH", "Frame", "LiveHub", "setup_live"]

log = logging.getLogger(__name__)

PATH = "/api/v1/ws"
CLOSE_LAGGING = 4000
CLOSE_UNAUTHORIZED = 4001
_CONTROL_LIMIT = 100  # replies (pong, error) waiting for a page that sends but does not read
_REAUTH_SECONDS = 30.0  # a revoked token stops receiving frames within this, even if the page is silent


@dataclass(frozen=True, slots=True)
class Frame:
    """Serialized once, shared by every connection. ``audience`` is who sees it in focus mode:
    the conversation's assignee and, on a handover, the previous one; None means everyone."""

    seq: int
    text: str
    audience: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class _Draft:
    """A frame before its turn: the audience is settled in sequence order, when the assignee
    cache is current up to this event."""

    seq: int
    text: str | None  # None: nobody watches, so the frame was not built
    conversation_id: str | None = None
    assignee_id: str | None = None
    assignee_known: bool = False
    operator: Operator | None = None


def _unwatched(seq: int, event: Event) -> _Draft:
    """What the hub must still track of an event nobody sees: its number and its assignee."""
    if isinstance(event, ConversationCreated | ConversationUpdated | MessageCreated):
        conversation = event.conversation
        return _Draft(seq, None, conversation.id, conversation.assignee_id, assignee_known=True)
    if isinstance(event, DeliveryUpdated):
        return _Draft(seq, None, event.message.conversation_id)
    return _Draft(seq, None)


class _Lru(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self._size:
            self.popitem(last=False)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Hello(_Message):
    type: Literal["hello"]
    after: Annotated[int, Field(ge=0)] | None = None
    stream: Annotated[str, StringConstraints(max_length=64)] | None = None


class _Presence(_Message):
    type: Literal["presence"]
    presence: Literal["online", "away", "offline"]


class _Ping(_Message):
    type: Literal["ping"]


_MESSAGES: dict[str, type[_Message]] = {"hello": _Hello, "presence": _Presence, "ping": _Ping}


class LiveHub:
    """One per application: the only bus subscriber for pages, so an event is serialized once
    however many pages are open, and the ring buffer lets a page resume instead of reloading."""

    def __init__(
        self,
        bus: EventBus,
        reads: InboxReads,
        router: Router,
        *,
        buffer_size: int = 10_000,
        send_queue: int = 1_000,
        heartbeat: float = 30.0,
        max_msg_size: int = 4096,
        allowed_origins: Collection[str] = (),
        gap_timeout: float = 5.0,
        close_timeout: float = 5.0,
        idle_grace: float = 60.0,
    ) -> None:
        self.bus, self.reads, self.router = bus, reads, router
        self.stream = secrets.token_hex(8)
        self.send_queue, self.close_timeout, self._gap_timeout = send_queue, close_timeout, gap_timeout
        self._buffer_size, self._heartbeat, self._max_msg_size = buffer_size, heartbeat, max_msg_size
        self._allowed_origins = frozenset(allowed_origins)
        self._frames: deque[Frame] = deque()
        self._floor = 0  # every frame with a higher seq is in the buffer
        self._released = 0
        self._pending: dict[int, _Draft] = {}
        self._gap_timer: asyncio.TimerHandle | None = None
        self._connections: set[_Connection] = set()
        self._names = _Lru(10_000)
        self._assignees = _Lru(100_000)
        self._idle_grace = idle_grace
        self._watched_until = 0.0  # monotonic; frames are built while a page is open and for a grace after
        self._unsubscribe: Any = None

    @property
    def seq(self) -> int:
        """The last sequence number released to pages; every frame up to it has been decided."""
        return self._released

    @property
    def connections(self) -> int:
        return len(self._connections)

    def start(self) -> None:
        self._released = self._floor = self.bus.sequence
        self._unsubscribe = self.bus.subscribe(self._on_event)

    def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._gap_timer:
            self._gap_timer.cancel()

    async def close_all(self) -> None:
        """On shutdown, before aiohttp waits for handlers: an open socket would hold it up."""
        connections = tuple(self._connections)
        for connection in connections:
            connection.kick(WSCloseCode.GOING_AWAY, "server shutting down: reconnect and resume")
        await asyncio.gather(*(c.closed() for c in connections), return_exceptions=True)

    # events → frames, in sequence order

    async def _on_event(self, seq: int, event: Event) -> None:
        if not self._connections and time.monotonic() > self._watched_until:
            self._accept(_unwatched(seq, event))  # keeps the numbering and who holds what, builds nothing
            return
        try:
            draft = await self._draft(seq, event)
        except Exception:  # a bare frame keeps the numbering whole; the page reloads what it shows
            log.exception("live: could not build the frame for %s #%d", event.type, seq)
            draft = _Draft(seq, json.dumps({"seq": seq, "type": event.type}))
        self._accept(draft)

    async def _draft(self, seq: int, event: Event) -> _Draft:
        payload: dict[str, Any] = {"seq": seq, "type": event.type}
        conversation: Conversation | None = None
        if isinstance(event, ConversationCreated | ConversationUpdated | MessageCreated):
            conversation = event.conversation
            name = await self._contact_name(conversation.contact_id)
            payload["conversation"] = ConversationOut.of(conversation, name).model_dump(mode="json")
        if isinstance(event, ConversationUpdated):
            payload.update(changed=list(event.changed), actor_id=event.actor_id)
        if isinstance(event, MessageCreated | DeliveryUpdated):
            payload["message"] = MessageOut.of(event.message).model_dump(mode="json")
        if isinstance(event, OperatorUpdated):
            payload["operator"] = OperatorOut.of(event.operator).model_dump(mode="json")
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        if conversation is not None:
            return _Draft(seq, text, conversation.id, conversation.assignee_id, assignee_known=True)
        if isinstance(event, DeliveryUpdated):
            return _Draft(seq, text, event.message.conversation_id)
        if isinstance(event, OperatorUpdated):
            return _Draft(seq, text, operator=event.operator)
        return _Draft(seq, text)  # an event this module does not know yet: shown outside focus mode only

    async def _contact_name(self, contact_id: str) -> str | None:
        """Cached briefly: the lookup runs on the publisher's path, once per contact and minute."""
        hit = self._names.get(contact_id)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        try:
            name = (await self.reads.contact(contact_id)).name
        except InboxError:
            name = None
        self._names.put(contact_id, (name, time.monotonic() + 60.0))
        return name

    def _accept(self, draft: _Draft) -> None:
        if draft.seq <= self._released:
            log.warning("live: event #%d arrived after its gap was skipped; sent out of order", draft.seq)
            self._release(draft, late=True)
            return
        self._pending[draft.seq] = draft
        self._drain()

    def _drain(self) -> None:
        while (draft := self._pending.pop(self._released + 1, None)) is not None:
            self._released = draft.seq
            self._release(draft)
        if self._gap_timer:
            self._gap_timer.cancel()
            self._gap_timer = None
        if self._pending:
            released = self._released
            self._gap_timer = asyncio.get_running_loop().call_later(self._gap_timeout, self._skip_gap, released)

    def _skip_gap(self, released: int) -> None:
        self._gap_timer = None
        if self._pending and self._released == released:
            first = min(self._pending)
            log.warning("live: events #%d..#%d never arrived; skipped", released + 1, first - 1)
            self._released = first - 1
        self._drain()

    def _release(self, draft: _Draft, *, late: bool = False) -> None:
        audience: frozenset[str] | None = frozenset()
        if draft.operator is not None:
            audience = None
            for connection in self._connections:
                if connection.operator.id == draft.operator.id:
                    connection.operator = draft.operator
        elif draft.conversation_id is not None:
            previous = self._assignees.get(draft.conversation_id)
            if draft.assignee_known:
                self._assignees.put(draft.conversation_id, draft.assignee_id)
                audience = frozenset(a for a in (draft.assignee_id, previous) if a)
            else:
                audience = frozenset((previous,)) if previous else frozenset()
        if draft.text is None:  # a page coming back now cannot resume across it: it reloads
            self._frames.clear()
            self._floor = max(self._floor, self._released, draft.seq)
            for connection in tuple(self._connections):  # opened while it was pending: it missed this one
                connection.kick(CLOSE_LAGGING, "missed a frame: reconnect and reload")
            return
        frame = Frame(draft.seq, draft.text, audience)
        if not late:
            self._frames.append(frame)
        elif frame.seq > self._floor:
            index = next((i for i, f in enumerate(self._frames) if f.seq > frame.seq), len(self._frames))
            self._frames.insert(index, frame)
        while len(self._frames) > self._buffer_size:
            self._floor = self._frames.popleft().seq
        for connection in tuple(self._connections):
            connection.push(frame)

    # connections

    def attach(self, connection: _Connection, after: int | None, stream: str | None) -> tuple[list[Frame] | None, int]:
        """Registers the connection and snapshots the buffer in one step without awaiting, so the
        live queue holds exactly the frames released after the replay: none missed, none twice.
        Returns the replay (None: cannot replay, the page resets) and the seq it ends at."""
        self._connections.add(connection)
        if stream is not None and stream != self.stream and after is not None:
            return None, self._released
        frames = self.frames_after(after) if after is not None else []
        return (None if frames is None else [f for f in frames if connection.sees(f)]), self._released

    def frames_after(self, after: int) -> list[Frame] | None:
        """Every released frame with a higher seq, in order; None when some are no longer kept
        (or ``after`` is from the future: the server restarted and counts again from zero)."""
        if after > self._released or after < self._floor:
            return None
        return [f for f in self._frames if f.seq > after]

    def detach(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        if not self._connections:
            self._watched_until = time.monotonic() + self._idle_grace

    async def handle(self, request: web.Request) -> web.StreamResponse:
        operator = await _authenticate(request)
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, request.host, self._allowed_origins):
            raise ApiError(403, "forbidden_origin", "this origin may not open the live connection")
        ws = web.WebSocketResponse(heartbeat=self._heartbeat, max_msg_size=self._max_msg_size)
        if not ws.can_prepare(request).ok:
            raise ApiError(400, "websocket_required", "this endpoint speaks WebSocket only")
        await ws.prepare(request)
        connection = _Connection(self, ws, request, operator)
        try:
            await connection.serve()
        finally:
            self.detach(connection)
            await connection.closed()
        return ws


class _Connection:
    """One open page: a bounded queue filled without awaiting, drained by its own writer task."""

    def __init__(self, hub: LiveHub, ws: web.WebSocketResponse, request: web.Request, operator: Operator) -> None:
        self.hub, self.ws, self.request, self.operator = hub, ws, request, operator
        self._frames: deque[Frame] = deque()
        self._control: deque[str] = deque()
        self._replay: deque[Frame] = deque()
        self._opening: str | None = None  # ready or reset, sent after the replay
        self._subscribed = False
        self._wake = asyncio.Event()
        self._authenticated_at = time.monotonic()
        self._writer = asyncio.create_task(self._write(), name="live-writer")
        self._closer: asyncio.Task[None] | None = None

    def sees(self, frame: Frame) -> bool:
        """Focus mode (operators only) narrows frames to their conversations, plus every operator
        frame: presence is what the operator list already shows each operator."""
        if frame.audience is None or self.operator.id in frame.audience:
            return True
        return self.operator.role.at_least(Role.SUPERVISOR) or not self.hub.router.in_focus(self.operator)

    def push(self, frame: Frame) -> None:
        if self._closer is not None or not self.sees(frame):
            return
        if len(self._frames) >= self.hub.send_queue:
            log.info("live: closing the connection of operator %s: too far behind", self.operator.id)
            self.kick(CLOSE_LAGGING, "too far behind: reconnect and resume from your last seq")
            return
        self._frames.append(frame)
        self._wake.set()

    def _reply(self, message: dict[str, Any]) -> None:
        if self._closer is not None:
            return
        if len(self._control) >= _CONTROL_LIMIT:
            self.kick(CLOSE_LAGGING, "too many unread replies")
            return
        self._control.append(json.dumps(message, separators=(",", ":")))
        self._wake.set()

    def kick(self, code: int, reason: str) -> None:
        """Synchronous, so the hub can call it while fanning out; the close itself runs aside and
        gives up on a peer that does not read after ``close_timeout`` (the transport is dropped)."""
        if self._closer is not None:
            return
        self.hub.detach(self)
        self._frames.clear()
        self._closer = asyncio.create_task(self._close(code, reason), name="live-close")
        self._wake.set()  # the writer stops; not cancelled, as aiohttp shares its drain future with close()

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), self.hub.close_timeout)
        except BaseException as exc:  # a closed transport still flushes its buffer, to a peer that never reads
            if self.request.transport is not None:
                self.request.transport.abort()
            task = asyncio.current_task()
            if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
                raise

    async def closed(self) -> None:
        """Waits without propagating: a handler cancelled here must not cancel the close."""
        if self._closer is not None:
            await asyncio.wait({self._closer})
        self._writer.cancel()
        await asyncio.wait({self._writer})

    async def _write(self) -> None:
        try:
            while self._closer is None:
                if self._control:
                    await self.ws.send_str(self._control.popleft())
                elif self._replay:
                    await self.ws.send_str(self._replay.popleft().text)
                elif self._opening is not None:
                    opening, self._opening = self._opening, None
                    await self.ws.send_str(opening)
                elif self._frames:
                    frame = self._frames.popleft()
                    if time.monotonic() - self._authenticated_at > _REAUTH_SECONDS and not await self._reauthenticate():
                        return
                    if self.sees(frame):
                        await self.ws.send_str(frame.text)
                else:
                    self._wake.clear()
                    await self._wake.wait()
        except (ConnectionError, RuntimeError) as exc:  # the peer went away mid-send
            log.debug("live: send to operator %s failed: %r", self.operator.id, exc)
            self.kick(WSCloseCode.GOING_AWAY, "send failed")
        except Exception:
            log.exception("live: writer for operator %s failed", self.operator.id)
            self.kick(WSCloseCode.INTERNAL_ERROR, "internal error")

    async def _reauthenticate(self) -> bool:
        """Through the same function as the REST API, so a role change, a deleted operator or an
        expired session is noticed here too."""
        request = self.request
        sessions = request.config_dict.get(SESSIONS)
        if sessions is not None:
            sessions.forget(request)
        try:
            operator = await operator_for(
                request, request.app[SERVICE].reads, request.app[OPERATOR_TOKENS], request.config_dict.get(SESSIONS)
            )
        except InboxError as exc:  # the store is unavailable: keep the last answer, ask again next time
            log.warning("live: could not re-check operator %s: %r", self.operator.id, exc)
            return True
        if operator is None:
            self.kick(CLOSE_UNAUTHORIZED, "credentials no longer valid")
            return False
        self.operator, self._authenticated_at = operator, time.monotonic()
        return True

    async def serve(self) -> None:
        async for message in self.ws:
            if message.type is WSMsgType.ERROR:  # aiohttp has closed it (e.g. 1009, too big)
                return
            if message.type is not WSMsgType.TEXT:
                self._reply(_error("text_required", "send JSON in text frames"))
                continue
            if not await self._reauthenticate():
                return
            try:
                data = json.loads(message.data)
            except ValueError:
                self._reply(_error("invalid_json", "the message is not valid JSON"))
                continue
            kind = _MESSAGES.get(str(data.get("type"))) if isinstance(data, dict) else None
            if kind is None:
                self._reply(_error("unknown_type", "expected a hello, presence or ping message"))
                continue
            try:
                parsed = kind.model_validate(data)
            except PydanticValidationError as exc:
                self._reply(_error("invalid_message", f"the {kind.__name__[1:].lower()} message is not valid", exc))
                continue
            await self._handle(parsed)

    async def _handle(self, message: _Message) -> None:
        if isinstance(message, _Ping):
            self._reply({"type": "pong"})
        elif isinstance(message, _Hello):
            if self._subscribed:
                self._reply(_error("already_subscribed", "hello is said once per connection"))
                return
            self._subscribed = True
            replay, seq = self.hub.attach(self, message.after, message.stream)
            self._replay.extend(replay or ())
            answer = "ready" if replay is not None else "reset"
            self._opening = json.dumps({"type": answer, "seq": seq, "stream": self.hub.stream})
            self._wake.set()
        elif isinstance(message, _Presence):
            try:
                await self.request.app[SERVICE].update_operator(
                    self.operator.id, self.operator, presence=Presence(message.presence)
                )
            except InboxError as exc:
                self._reply(_error(exc.code, str(exc)))


def _error(code: str, message: str, exc: PydanticValidationError | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if exc is not None:
        body["details"] = [
            {"field": ".".join(str(part) for part in error["loc"]), "problem": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
    return body


async def _authenticate(request: web.Request) -> Operator:
    """The REST API's own check (:func:`webui.auth.operator_for`), so sessions reach pages here
    too. No ``?token=``: a token in a URL ends up in access logs and browser history."""
    operator = await operator_for(
        request, request.app[SERVICE].reads, request.app[OPERATOR_TOKENS], request.config_dict.get(SESSIONS)
    )
    if operator is None:
        raise ApiError(401, "unauthorized", "a valid operator API token is required")
    return operator


def _same_origin(origin: str, host: str, allowed: Collection[str]) -> bool:
    """Browsers send cookies with a WebSocket handshake from any site; the Origin header is what
    tells a page of ours from someone else's (clients without a browser send none)."""
    return origin in allowed or urlsplit(origin).netloc.lower() == host.lower()


LIVE = web.AppKey("live", LiveHub)


def setup_live(app: web.Application, bus: EventBus, **options: Any) -> LiveHub:
    """Registers ``GET /api/v1/ws`` and the hub's lifecycle on ``app``, which :func:`create_web_app`
    has made (it reads the service and router from it); ``options`` are :class:`LiveHub`'s. Call
    before the app starts. The hub subscribes when the app starts, so adding it after routing's
    context keeps routing first."""
    hub = LiveHub(bus, app[SERVICE].reads, app[ROUTER], **options)
    app[LIVE] = hub
    app.router.add_get(PATH, hub.handle, allow_head=False)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        hub.start()
        yield
        hub.stop()

    async def on_shutdown(_: web.Application) -> None:
        await hub.close_all()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    return hub
