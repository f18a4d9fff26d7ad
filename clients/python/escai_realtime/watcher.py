"""Watching: ``watch()`` yields the events of your subscriptions, across reconnects, each once.

What the watcher does for you:

- connects to ``/ws/monitor/{session_id}`` with the token in an
  ``Authorization: Bearer`` header (never in the URL, so never in a log);
- reconnects with full-jitter exponential backoff after any drop the
  catalogue says to reconnect after (server restart 1001, slow consumer 4008,
  network loss, 5xx/429 handshakes, honouring ``Retry-After``);
- recovers what it missed: every single-stream subscription (an ``agent_id``,
  or ``system_alerts``) re-subscribes with ``since`` = the last offset/epoch it
  yielded on that stream, so the server replays exactly what followed;
  subscriptions without a single stream (all agents) rely on session resume
  (the same ``session_id``, see ``resume``);
- drops duplicates (by stream offset, and by ``event_id``): both decided by
  the pure ``_positions.Positions``, which follows the TypeScript SDK's rules;
- answers the server's JSON ``ping`` with ``pong`` (protocol pings are
  answered by websockets itself);
- on ``token_expiring`` asks ``token`` (when it is a callable) for a new token
  and sends ``refresh``;
- accepts frames holding a JSON array of messages (``batch=1`` servers).

What it tells you, in the stream of items (marked by ``type``):

- ``{"type": "recovery_failed", "subscription": ..., "reason": ...}`` when
  events were missed and cannot be replayed (reload state, e.g. from
  ``GET /api/v1/agents/{id}/events``); or raises ``RecoveryFailedError``
  with ``raise_on_recovery_failed=True``;
- ``{"type": "subscription_revoked", ...}`` when a refreshed token no longer
  allows a subscription (it is dropped).

What it raises (ending the iteration):

- ``TerminalError``: a refusal retrying cannot fix: a handshake refused with a
  non-retryable catalogue code (401 TOKEN_INVALID, 403 PERMISSION_DENIED, …;
  401 TOKEN_EXPIRED only when ``token`` is a fixed string), or a close code
  whose catalogue entry says not to reconnect (1000, 4003, 4010, 4400, 4401,
  4410; 4001 and 4402, an expired token, only when ``token`` is a fixed
  string). Decided by the close code alone, never by parsing the reason;
- ``SubscriptionRefused``: the server refused a subscription for good
  (permission, validation);
- ``RecoveryFailedError`` (only with ``raise_on_recovery_failed=True``).
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote

from . import _compat
from ._backoff import full_jitter
from ._http import network_cause, parse_retry_after
from ._positions import Positions, stream_of
from .codes import NEEDS_NEW_TOKEN, close_allows_reconnect, close_refusal, error_is_retryable
from .errors import RecoveryFailedError, SubscriptionRefused, TerminalError
from .models import EVENT_TYPES, SUBSCRIPTION_TYPES, StreamPosition, SubscriptionInfo, WatchItem

log = logging.getLogger("escai_realtime")
#: Reconnect attempts in a row are logged at WARNING on the first and every LOG_EVERY-th (DEBUG between).
LOG_EVERY = 10

WatchToken = Union[str, Callable[[], Union[str, Awaitable[str]]], None]

_EVENT_TYPES = frozenset(EVENT_TYPES)



async def _close_quietly(ws: Any) -> None:
    """Closes a connection (1000) if there is one; a connection already gone is fine."""
    if ws is None:
        return
    try:
        await ws.close(1000, "client closed")
    except Exception:  # noqa: BLE001
        pass


def _raise_if_cancelled() -> None:
    """Raises CancelledError when this task was asked to stop but the request got lost.

    ``asyncio.wait_for`` (inside the websockets client's open timeout) can swallow a
    cancellation that arrives just as the connect attempt fails (a CPython race fixed in
    3.12): the failure comes out instead, and the watcher would go on reconnecting for
    ever. The task still counts the request (``Task.cancelling()``, Python 3.11+).
    """
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling() > 0:
        raise asyncio.CancelledError()


@dataclass
class Subscription:
    """One subscription: ``type`` (epistemic_updates, pattern_alerts, prediction_updates, agent_status, system_alerts),
    optionally one ``agent_id``, server-side ``filters`` (docs/PROTOCOL.md#filters), ``latest`` (start with the stream's
    newest wanted event) and ``since`` (start after this position, replaying what followed)."""

    type: str
    agent_id: Optional[str] = None
    filters: Optional[Dict[str, Any]] = None
    latest: bool = False
    since: Optional[StreamPosition] = None
    # internal state
    active: bool = field(default=False, repr=False, compare=False)  # confirmed on the current connection
    confirmed: bool = field(default=False, repr=False, compare=False)  # confirmed at least once

    def __post_init__(self) -> None:
        if self.type not in SUBSCRIPTION_TYPES:
            raise ValueError(f"unknown subscription type {self.type!r}; one of {', '.join(SUBSCRIPTION_TYPES)}")
        if self.type == "system_alerts" and self.agent_id is not None:
            raise ValueError("system_alerts subscriptions take no agent_id")
        if self.since is not None and self.stream is None:
            raise ValueError("since needs a single stream (an agent_id, or system_alerts)")

    @property
    def key(self) -> Tuple[str, Optional[str]]:
        return (self.type, self.agent_id)

    @property
    def stream(self) -> Optional[str]:
        """The one stream this subscription reads (``agent:{id}``, ``activity:{id}``, ``system``), None for all-agents subscriptions."""
        if self.type == "system_alerts":
            return "system"
        if self.agent_id is None:
            return None
        return f"{_family(self.type)}{self.agent_id}"

    @property
    def event_type(self) -> str:
        return SUBSCRIPTION_TYPES[self.type]

    def info(self) -> SubscriptionInfo:
        return {"type": self.type, "agent_id": self.agent_id, "filters": self.filters}  # type: ignore[typeddict-item]

    @classmethod
    def of(cls, value: Union["Subscription", str, Mapping[str, Any]]) -> "Subscription":
        if isinstance(value, Subscription):
            return Subscription(value.type, value.agent_id, value.filters, value.latest, value.since)
        if isinstance(value, str):
            return cls(value)
        return cls(str(value["type"]), value.get("agent_id"), value.get("filters"), bool(value.get("latest", False)), value.get("since"))


SubscriptionLike = Union[Subscription, str, Mapping[str, Any]]


def _family(subscription_type: str) -> str:
    """The stream prefix of a per-agent subscription type: what an agent does (``activity:``) or thinks (``agent:``)."""
    return "activity:" if subscription_type == "agent_activity" else "agent:"


class _Reconnect(Exception):
    """Internal: the connection ended; reconnect after ``delay`` (None: the backoff's)."""

    def __init__(self, why: str, delay: Optional[float] = None) -> None:
        super().__init__(why)
        self.delay = delay


class Watcher:
    """An async iterator of events (see the module doc). Usually made by ``watch()``.

    Attributes worth reading: ``session_id`` (of the current connection),
    ``connects`` (connections established), ``refreshes`` (tokens refreshed),
    ``last_close`` ((code, reason) of the last drop), ``position(stream, event_type)``.
    """

    def __init__(
        self,
        url: str,
        token: WatchToken = None,
        subscriptions: Iterable[SubscriptionLike] = (),
        *,
        session_id: Optional[str] = None,
        resume: str = "auto",
        min_reconnect_delay: float = 0.25,
        max_reconnect_delay: float = 15.0,
        raise_on_recovery_failed: bool = False,
        open_timeout: float = 10.0,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        max_size: Optional[int] = 16 * 1024 * 1024,
        dedup_window: int = 10_000,
    ) -> None:
        if resume not in ("auto", "session", "offsets"):
            raise ValueError('resume must be "auto", "session" or "offsets"')
        base = url.rstrip("/")
        base = re.sub(r"^http", "ws", base)
        base = re.sub(r"/ws/monitor(/.*)?$", "", base)
        self._base = base
        self._token = token
        self._subs: "OrderedDict[Tuple[str, Optional[str]], Subscription]" = OrderedDict()
        for s in subscriptions:
            sub = Subscription.of(s)
            self._subs[sub.key] = sub
        # Last offset seen per stream and event type: drives `since` and drops duplicates (see _positions.py).
        self._positions = Positions(dedup_window)
        for sub in self._subs.values():
            if sub.since is not None and sub.stream is not None:
                self._positions.set(sub.stream, sub.event_type, sub.since)
        # Room for the ".N" suffix of fresh sessions (session ids: at most 128 characters).
        self._base_session = (session_id or f"py-{uuid.uuid4().hex[:16]}")[:120]
        self.session_id = self._base_session
        self._resume = resume
        self._min_delay = min_reconnect_delay
        self._max_delay = max_reconnect_delay
        self._raise_on_recovery_failed = raise_on_recovery_failed
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._max_size = max_size
        self._ws: Any = None
        self._closed = False
        self._connected_once = False
        self._attempt = 0
        self._next_id = 0
        self._pending: Dict[int, Tuple[str, Any]] = {}
        self._gen: Optional[AsyncIterator[WatchItem]] = None
        self.connects = 0
        self.refreshes = 0
        self.last_close: Optional[Tuple[int, str]] = None
        self.connection_id: Optional[str] = None
        self.resumed = False
        self._subscribed: Optional[asyncio.Event] = None
        self._failure: Optional[BaseException] = None

    # ---- the API -------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[WatchItem]:
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    async def __anext__(self) -> WatchItem:
        return await self.__aiter__().__anext__()

    async def __aenter__(self) -> "Watcher":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops for good: the iteration ends (StopAsyncIteration) and the connection is closed."""
        self._closed = True
        ws, self._ws = self._ws, None
        await _close_quietly(ws)
        gen = self._gen
        if gen is not None:
            try:
                await gen.aclose()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - running elsewhere (RuntimeError): it sees _closed
                pass

    async def wait_subscribed(self, timeout: Optional[float] = None) -> None:
        """Waits until every subscription is confirmed on the current connection (while someone iterates)."""
        await asyncio.wait_for(self._subscribed_event().wait(), timeout)
        if self._failure is not None:
            raise self._failure
        if self._closed and not all(s.active for s in self._subs.values()):
            raise RuntimeError("the watcher stopped before its subscriptions were confirmed")

    def _subscribed_event(self) -> asyncio.Event:
        if self._subscribed is None:
            self._subscribed = asyncio.Event()
        return self._subscribed

    def _check_subscribed(self) -> None:
        if all(s.active for s in self._subs.values()):
            self._subscribed_event().set()

    def position(self, stream: str, event_type: str) -> Optional[StreamPosition]:
        """The last offset/epoch yielded on ``stream`` (``agent:{id}``, ``system``, ``user``) for ``event_type``."""
        return self._positions.get(stream, event_type)

    @property
    def subscriptions(self) -> List[SubscriptionInfo]:
        return [s.info() for s in self._subs.values()]

    # ---- connection lifecycle --------------------------------------------------

    async def _get_token(self) -> Optional[str]:
        tok = self._token
        if tok is None or isinstance(tok, str):
            return tok
        value = tok()
        if inspect.isawaitable(value):
            value = await value
        return value  # type: ignore[return-value]

    def _session_for_connect(self) -> str:
        offsets = self._resume == "offsets" or (
            self._resume == "auto" and len(self._subs) > 0 and all(s.stream is not None for s in self._subs.values())
        )
        if offsets and self._connected_once:
            # A fresh session: every subscription recovers from its own offsets (exact), none from
            # what the server last wrote to a socket that died (which may never have been read).
            return f"{self._base_session}.{self.connects}"
        return self._base_session

    async def _run(self) -> AsyncIterator[WatchItem]:
        try:
            while not self._closed:
                delay: Optional[float] = None
                try:
                    async for item in self._connection():
                        yield item
                    return  # closed by the application
                except _Reconnect as why:
                    delay = why.delay
                    # The first failure in a row, then every LOG_EVERY-th, at WARNING: a watcher
                    # that cannot reach its server says so; one that keeps trying does not flood.
                    failures = self._attempt + 1
                    level = logging.WARNING if failures == 1 or failures % LOG_EVERY == 0 else logging.DEBUG
                    log.log(level, "escai_realtime: %s: %s; reconnecting (attempt %d)", self._base, why, failures)
                if self._closed:
                    return
                _raise_if_cancelled()
                backoff = full_jitter(self._attempt, self._min_delay, self._max_delay)
                self._attempt += 1
                await asyncio.sleep(max(backoff, delay or 0.0))
        except Exception as err:
            self._failure = err
            raise
        finally:
            self._closed = True
            if self._subscribed is not None:
                self._subscribed.set()  # wakes wait_subscribed(), which reports why
            ws, self._ws = self._ws, None
            await _close_quietly(ws)

    async def _connection(self) -> AsyncIterator[WatchItem]:
        try:
            token = await self._get_token()
        except Exception as err:  # noqa: BLE001 - a token source that fails now may work later
            raise _Reconnect(f"token source failed: {err}") from None
        session = self._session_for_connect()
        uri = f"{self._base}/ws/monitor/{quote(session, safe='')}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            ws = await _compat.connect(
                uri, headers, open_timeout=self._open_timeout, max_size=self._max_size, ping_interval=self._ping_interval, ping_timeout=self._ping_timeout
            )
        except Exception as err:  # noqa: BLE001 - sorted below
            refused = _compat.refusal(err)
            if refused is None:
                raise _Reconnect(f"cannot connect: {network_cause(err)}") from None
            status, hdrs, body = refused
            code = ""
            try:
                code = str(json.loads(body.decode("utf-8"))["error"]["code"])
            except Exception:  # noqa: BLE001 - not a catalogue answer (or the library kept no body)
                pass
            retry_after = parse_retry_after(hdrs.get("Retry-After") if hasattr(hdrs, "get") else None)
            if code == "TOKEN_EXPIRED" and callable(self._token):
                raise _Reconnect("token expired: asking for a new one", 0.0) from None
            terminal = (not error_is_retryable(code)) if code else status in (400, 401, 403, 404, 426)
            if terminal:
                self._closed = True
                raise TerminalError(code or f"HTTP_{status}", f"handshake refused with HTTP {status}{' ' + code if code else ''}", status=status) from None
            raise _Reconnect(f"handshake refused with HTTP {status} {code}", retry_after) from None
        self._ws = ws
        self.session_id = session
        try:
            while True:
                try:
                    raw = await ws.recv()
                except _compat.ConnectionClosed as closed:
                    close_code, reason = _compat.close_info(closed)
                    self.last_close = (close_code, reason)
                    if self._closed:
                        return
                    # Decided by the close code alone (first-message auth refusals have their own, 44xx): the reason is for people.
                    if not close_allows_reconnect(close_code) or (close_code in NEEDS_NEW_TOKEN and not callable(self._token)):
                        self._closed = True
                        named = close_refusal(close_code) or f"CLOSED_{close_code}"
                        raise TerminalError(named, reason or f"closed with {close_code}", close_code=close_code) from None
                    raise _Reconnect(f"closed with {close_code} {reason}") from None
                for item in await self._frame(ws, raw):
                    yield item
        finally:
            if self._ws is ws:
                self._ws = None
            await _close_quietly(ws)

    # ---- inbound ---------------------------------------------------------------

    async def _frame(self, ws: Any, raw: Union[str, bytes]) -> List[WatchItem]:
        try:
            parsed = json.loads(raw)
        except (ValueError, TypeError):
            log.warning("escai_realtime: ignored a frame that is not JSON")
            return []
        messages = parsed if isinstance(parsed, list) else [parsed]
        out: List[WatchItem] = []
        for msg in messages:
            if isinstance(msg, dict) and isinstance(msg.get("type"), str):
                out.extend(await self._message(ws, msg))
        return out

    async def _send(self, ws: Any, msg: Dict[str, Any]) -> None:
        try:
            await ws.send(json.dumps(msg))
        except _compat.ConnectionClosed:
            pass  # recv() reports the close

    async def _request(self, ws: Any, kind: str, ref: Any, type_: str, data: Any) -> None:
        self._next_id += 1
        self._pending[self._next_id] = (kind, ref)
        await self._send(ws, {"type": type_, "id": self._next_id, "data": data})

    async def _message(self, ws: Any, msg: Dict[str, Any]) -> List[WatchItem]:
        mtype = msg["type"]
        if mtype in _EVENT_TYPES:
            return self._event(msg)
        mid = msg.get("id")
        if isinstance(mid, int) and mid in self._pending:
            kind, ref = self._pending.pop(mid)
            if kind == "subscribe":
                return self._subscribe_reply(ref, msg)
            if kind == "refresh":
                if mtype == "token_refreshed":
                    self.refreshes += 1
                else:
                    log.warning("escai_realtime: token refresh refused: %s %s", msg.get("code"), msg.get("message"))
            return []
        if mtype == "connection_established":
            return await self._established(ws, msg)
        if mtype == "ping":
            await self._send(ws, {"type": "pong"})
        elif mtype == "token_expiring":
            if callable(self._token):
                try:
                    token = await self._get_token()
                except Exception as err:  # noqa: BLE001
                    log.warning("escai_realtime: token source failed on token_expiring: %s", err)
                else:
                    await self._request(ws, "refresh", None, "refresh", {"token": token})
            else:
                log.warning("escai_realtime: token expiring and no token callable to refresh it (the server closes with 4001 at expiry)")
        elif mtype == "token_refreshed":
            self.refreshes += 1
        elif mtype == "recovery_failed":
            data = msg.get("data") or {}
            stream, reason = data.get("stream"), str(data.get("reason") or "history lost")
            out: List[WatchItem] = []
            for sub in self._subs.values():
                if not isinstance(stream, str) or not self._follows(sub, stream):
                    continue
                if isinstance(data.get("offset"), int) and isinstance(data.get("epoch"), str):
                    self._positions.set(stream, sub.event_type, data)
                out.extend(self._recovery_failed(sub, reason))
            return out
        elif mtype == "subscription_revoked":
            data = msg.get("data") or {}
            sub = self._subs.pop((data.get("subscription_type"), data.get("agent_id")), None)  # type: ignore[arg-type]
            if sub is not None:
                self._check_subscribed()
                return [{"type": "subscription_revoked", "subscription": sub.info(), "reason": str(data.get("reason") or "")}]
        elif mtype == "error":
            log.warning("escai_realtime: server error %s: %s", msg.get("code"), msg.get("message"))
        return []

    @staticmethod
    def _follows(sub: Subscription, stream: str) -> bool:
        if stream == "system":
            return sub.type == "system_alerts"
        family = _family(sub.type)
        return sub.type != "system_alerts" and stream.startswith(family) and (sub.agent_id is None or stream == f"{family}{sub.agent_id}")

    def _recovery_failed(self, sub: Subscription, reason: str) -> List[WatchItem]:
        if self._raise_on_recovery_failed:
            raise RecoveryFailedError(sub.info(), reason)
        return [{"type": "recovery_failed", "subscription": sub.info(), "reason": reason}]

    def _event(self, event: Dict[str, Any]) -> List[WatchItem]:
        if self._positions.accept({**event, "stream": stream_of(event)}) == "duplicate":
            return []
        return [event]  # type: ignore[list-item]

    async def _established(self, ws: Any, msg: Dict[str, Any]) -> List[WatchItem]:
        resumed = msg.get("resumed") is True
        reconnect = self._connected_once
        self._connected_once = True
        self._attempt = 0
        self.connects += 1
        self.resumed = resumed
        self.connection_id = msg.get("connection_id")
        self._pending.clear()
        for sub in self._subs.values():
            sub.active = False
        self._subscribed_event().clear()
        out: List[WatchItem] = []
        if resumed:
            if msg.get("recovered") is False:
                for sub in self._subs.values():
                    out.extend(self._recovery_failed(sub, "history lost during resume"))
            restored = {(s.get("type"), s.get("agent_id")) for s in (msg.get("subscriptions") or []) if isinstance(s, dict)}
            for sub in list(self._subs.values()):
                if sub.key in restored:
                    sub.active = sub.confirmed = True
                else:
                    await self._subscribe(ws, sub, recovering=reconnect and sub.confirmed)
            self._check_subscribed()
            return out
        for sub in list(self._subs.values()):
            await self._subscribe(ws, sub, recovering=(reconnect and sub.confirmed) or sub.since is not None)
        self._check_subscribed()
        return out

    async def _subscribe(self, ws: Any, sub: Subscription, recovering: bool) -> None:
        data: Dict[str, Any] = {"type": sub.type, "agent_id": sub.agent_id, "filters": sub.filters}
        since = self._positions.since(sub.stream, sub.event_type) if recovering else None
        if since is not None:
            data["since"] = dict(since)
        if sub.latest:
            data["latest"] = True
        await self._request(ws, "subscribe", (sub, recovering, since is not None), "subscribe", data)

    def _subscribe_reply(self, ref: Tuple[Subscription, bool, bool], msg: Dict[str, Any]) -> List[WatchItem]:
        sub, recovering, sent_since = ref
        if msg["type"] == "error":
            code = str(msg.get("code") or "")
            if code == "SUBSCRIPTION_EXISTS":
                sub.active = sub.confirmed = True
                self._check_subscribed()
                return []
            if error_is_retryable(code):
                log.warning("escai_realtime: subscribe %s refused for now (%s); retried on the next connection", sub.key, code)
                return []
            self._subs.pop(sub.key, None)
            self._check_subscribed()
            raise SubscriptionRefused(code, str(msg.get("message") or ""), sub.info())
        if msg["type"] != "subscription_confirmed":
            return []
        sub.active = sub.confirmed = True
        sub.since = None
        self._check_subscribed()
        data = msg.get("data") or {}
        recovered = data.get("recovered")
        stream = sub.stream
        # Start from the confirmed position unless a replay from our own is coming (never backwards).
        self._positions.confirm(stream, sub.event_type, data)
        if recovering and sent_since and recovered is False:
            return self._recovery_failed(sub, "position no longer in history")
        if recovering and stream is None:
            return self._recovery_failed(sub, "session not resumed; all-agents subscriptions have no single position")
        return []


def watch(url: str, token: WatchToken = None, subscriptions: Iterable[SubscriptionLike] = (), **options: Any) -> Watcher:
    """An async iterator of the events of ``subscriptions`` (see the module doc).

    ``url``: the server (``ws://host:8000`` or ``http://host:8000``).
    ``token``: a JWT string, or a callable (sync or async) returning one, asked
    before every connection and on ``token_expiring``.

    >>> async for event in watch("ws://127.0.0.1:8000", token=get_token,
    ...                          subscriptions=[Subscription("epistemic_updates", agent_id="agent_1")]):
    ...     print(event["type"], event.get("agent_id"), event.get("data"))
    """
    return Watcher(url, token, subscriptions, **options)


def watch_sync(
    url: str,
    on_event: Callable[[WatchItem], Optional[bool]],
    token: WatchToken = None,
    subscriptions: Iterable[SubscriptionLike] = (),
    *,
    stop: Optional[threading.Event] = None,
    **options: Any,
) -> None:
    """The callback form, for scripts: blocks, calling ``on_event`` for every item, until it returns ``False``,
    ``stop`` is set, or the watcher raises (TerminalError, SubscriptionRefused …, re-raised here)."""

    async def main() -> None:
        watcher = Watcher(url, token, subscriptions, **options)

        async def consume() -> None:
            async for item in watcher:
                if on_event(item) is False:
                    return

        task = asyncio.ensure_future(consume())
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.2)
                if stop is not None and stop.is_set() and not task.done():
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        pass
                    return
            task.result()  # re-raises what ended the watch
        finally:
            if not task.done():
                task.cancel()
            await watcher.close()

    asyncio.run(main())
