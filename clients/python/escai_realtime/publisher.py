"""Producers: ``Publisher`` (sync, a background thread) and ``AsyncPublisher`` (asyncio).

Both queue events and send them in batches over ``POST /api/v1/events``:

- a batch leaves when it holds ``batch_size`` events or ``max_batch_bytes``
  bytes, or ``flush_interval`` seconds after its first event, or at once on
  ``flush()`` / ``close()`` / interpreter exit (atexit);
- every event carries an ``idempotency_key`` (a fresh UUID unless the event
  has one), kept across retries, so a retry after an answer that never came
  is answered ``duplicate`` by the server instead of delivered twice;
- network errors, 429, 5xx (503 ENGINE_UNAVAILABLE, SHUTTING_DOWN …) are
  retried with full-jitter backoff, never sooner than ``Retry-After``, for at
  most ``retry_timeout`` seconds; then the batch fails (``PublishError``);
- a refusal that retrying cannot fix fails: 400 ``VALIDATION_ERROR`` becomes a
  ``ValidationError`` naming the field (``events[i].data.confidence_level``);
  the server refuses a batch whole, so the publisher sends the batch's other
  events again without the named one(s), and reports the refused one;
  ``stats["failed"]`` counts the events that were not published (the refused
  one, not the rest of its batch sent again); a batch the server finds too
  large (413) is split in halves, each settled on its own;
- failures are never dropped silently: ``on_error`` is called with the
  exception (default: logged at ERROR), and ``flush()`` / ``close()`` raise
  the first failure since the last call;
- ``publish()`` never blocks the caller longer than ``max_block`` seconds:
  when the bounded queue (``max_queue`` events) is still full after that, it
  raises ``QueueFull`` (``on_full="raise"``, the default) or drops the new
  event, counts it in ``stats["dropped"]`` and reports it to ``on_error``
  (``on_full="drop"``).

``AsyncPublisher`` runs each HTTP request (urllib) in a one-thread executor of
its own: the event loop never waits on the network, and the package needs no
HTTP library beyond the standard one.
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import queue
import re
import threading
import time
import uuid
import weakref
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, cast

from ._backoff import full_jitter
from ._http import Answer, TokenSource, post_events, resolve_token
from .errors import EscaiError, PublishError, PublisherClosed, QueueFull, ValidationError
from .models import (
    SEVERITIES,
    AgentStatusChangeInput,
    BehavioralPattern,
    EpistemicState,
    EpistemicUpdateInput,
    PatternAlertInput,
    PredictionResult,
    PredictionUpdateInput,
    PublishedRef,
    Severity,
    SystemAlertInput,
    UserNotificationInput,
)

log = logging.getLogger("escai_realtime")

# The server's id rule: dots only ("." or "..") is refused, as URLs resolve such segments away.
_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9_.:@-]{1,128}$")
_REQUIRED: dict[str, tuple[str, ...]] = {
    "epistemic_update": ("agent_id", "data"),
    "pattern_alert": ("agent_id", "data"),
    "prediction_update": ("agent_id", "data"),
    "system_alert": ("alert_type", "message"),
    "agent_status_change": ("agent_id", "status"),
    "user_notification": ("user_id", "notification_type", "message"),
    "agent_activity": ("agent_id", "data"),
}


# ---- event builders ----------------------------------------------------------


def epistemic_update_event(agent_id: str, state: EpistemicState, *, idempotency_key: Optional[str] = None) -> EpistemicUpdateInput:
    ev: EpistemicUpdateInput = {"type": "epistemic_update", "agent_id": agent_id, "data": state}
    if idempotency_key:
        ev["idempotency_key"] = idempotency_key
    return ev


def pattern_alert_event(
    agent_id: str,
    pattern: BehavioralPattern,
    *,
    severity: str = "info",
    alert_type: str = "pattern_detected",
    idempotency_key: Optional[str] = None,
) -> PatternAlertInput:
    # severity: a str for callers; check_event refuses one outside SEVERITIES when it is published.
    ev: PatternAlertInput = {"type": "pattern_alert", "agent_id": agent_id, "data": pattern, "alert_type": alert_type, "severity": cast(Severity, severity)}
    if idempotency_key:
        ev["idempotency_key"] = idempotency_key
    return ev


def prediction_update_event(agent_id: str, prediction: PredictionResult, *, idempotency_key: Optional[str] = None) -> PredictionUpdateInput:
    ev: PredictionUpdateInput = {"type": "prediction_update", "agent_id": agent_id, "data": prediction}
    if idempotency_key:
        ev["idempotency_key"] = idempotency_key
    return ev


def agent_status_event(agent_id: str, status: str, metadata: Optional[Mapping[str, Any]] = None, *, idempotency_key: Optional[str] = None) -> AgentStatusChangeInput:
    ev: AgentStatusChangeInput = {"type": "agent_status_change", "agent_id": agent_id, "status": status, "metadata": dict(metadata or {})}
    if idempotency_key:
        ev["idempotency_key"] = idempotency_key
    return ev


def system_alert_event(
    alert_type: str, message: str, *, severity: str = "info", metadata: Optional[Mapping[str, Any]] = None, idempotency_key: Optional[str] = None
) -> SystemAlertInput:
    # severity: as in pattern_alert_event (checked by check_event).
    ev: SystemAlertInput = {"type": "system_alert", "alert_type": alert_type, "message": message, "severity": cast(Severity, severity), "metadata": dict(metadata or {})}
    if idempotency_key:
        ev["idempotency_key"] = idempotency_key
    return ev


def user_notification_event(
    user_id: str, notification_type: str, message: str, data: Optional[Mapping[str, Any]] = None, *, idempotency_key: Optional[str] = None
) -> UserNotificationInput:
    ev: UserNotificationInput = {"type": "user_notification", "user_id": user_id, "notification_type": notification_type, "message": message, "data": dict(data or {})}
    if idempotency_key:
        ev["idempotency_key"] = idempotency_key
    return ev


def check_event(event: Mapping[str, Any], where: str = "event") -> None:
    """The envelope checks the client can make before sending (the server checks the rest and names the field)."""
    if not isinstance(event, Mapping):
        raise ValidationError(f"{where}: must be an object (a dict), got {type(event).__name__}", events=[event])
    etype = event.get("type")
    if etype not in _REQUIRED:
        raise ValidationError(f"{where}.type: must be one of {', '.join(_REQUIRED)}; got {etype!r}", events=[event])
    for key in _REQUIRED[etype]:
        if key not in event or event[key] is None:
            raise ValidationError(f"{where}.{key}: required for {etype}", events=[event])
    for key in ("agent_id", "user_id"):
        if key in event and not (isinstance(event[key], str) and _ID.fullmatch(event[key])):
            raise ValidationError(f"{where}.{key}: 1-128 characters of letters, digits and _ . : @ -, not dots only; got {event[key]!r}", events=[event])
    if "severity" in event and event["severity"] not in SEVERITIES:
        raise ValidationError(f"{where}.severity: must be one of {', '.join(SEVERITIES)}; got {event['severity']!r}", events=[event])
    if "data" in event and not isinstance(event["data"], Mapping):
        raise ValidationError(f"{where}.data: must be an object", events=[event])
    idem = event.get("idempotency_key")
    if idem is not None and not (isinstance(idem, str) and 1 <= len(idem) <= 256):
        raise ValidationError(f"{where}.idempotency_key: 1-256 characters", events=[event])


class _Item:
    """A queued event: its JSON text (taken when published: later changes to the dict do not leak in) and the event."""

    __slots__ = ("json", "event")

    def __init__(self, json_bytes: bytes, event: Dict[str, Any]) -> None:
        self.json = json_bytes
        self.event = event


def _encode(event: Mapping[str, Any], key_prefix: str, seq: int, max_event_bytes: int) -> _Item:
    check_event(event)
    ev = dict(event)
    ev.setdefault("idempotency_key", f"{key_prefix}-{seq}")
    try:
        raw = json.dumps(ev, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as err:
        raise ValidationError(f"event: not JSON-serialisable ({err})", events=[ev]) from None
    if len(raw) > max_event_bytes:
        raise ValidationError(f"event: {len(raw)} bytes as JSON, over the limit of {max_event_bytes} (max_event_bytes)", events=[ev])
    return _Item(raw, ev)


def _body(items: Sequence[_Item]) -> bytes:
    return b"[" + b",".join(i.json for i in items) + b"]"


def _named_indices(message: str, n: int) -> list[int]:
    return sorted({int(m) for m in re.findall(r"events\[(\d+)\]", message) if int(m) < n})


def _without_refused(err: ValidationError, items: List[_Item]) -> Optional[List[_Item]]:
    """The batch without the events a refusal names; None when it names none, or all (nothing to send again).

    The indices are positions in ``err.events`` (the request that was refused,
    which is ``items`` or, after a 413 split, a part of it): the refused events
    are matched by identity, not by position in ``items``.
    """
    bad = {id(err.events[i]) for i in _named_indices(err.message, len(err.events))}
    rest = [it for it in items if id(it.event) not in bad]
    return rest if bad and rest and len(rest) < len(items) else None


class _Options:
    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        batch_size: int,
        max_batch_bytes: int,
        flush_interval: float,
        max_queue: int,
        max_block: float,
        on_full: str,
        on_error: Optional[Callable[[BaseException], None]],
        on_retry: Optional[Callable[[Answer, float], None]],
        request_timeout: float,
        min_retry_delay: float,
        max_retry_delay: float,
        retry_timeout: float,
        close_timeout: float,
        max_event_bytes: int,
    ) -> None:
        if on_full not in ("raise", "drop"):
            raise ValueError('on_full must be "raise" or "drop"')
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be 1..1000 (the server's maxBatchEvents default is 1000)")
        self.base_url = base_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rstrip("/")
        self.token = token
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.max_block = max_block
        self.on_full = on_full
        self.on_error = on_error
        self.on_retry = on_retry
        self.request_timeout = request_timeout
        self.min_retry_delay = min_retry_delay
        self.max_retry_delay = max_retry_delay
        self.retry_timeout = retry_timeout
        self.close_timeout = close_timeout
        self.max_event_bytes = max_event_bytes


class _Base:
    """What both publishers share: options, stats, error reporting, event helpers."""

    _opts: _Options

    def __init__(
        self,
        base_url: str,
        token: TokenSource = None,
        *,
        batch_size: int = 100,
        max_batch_bytes: int = 512 * 1024,
        flush_interval: float = 0.25,
        max_queue: int = 10_000,
        max_block: float = 0.05,
        on_full: str = "raise",
        on_error: Optional[Callable[[BaseException], None]] = None,
        on_retry: Optional[Callable[[Answer, float], None]] = None,
        request_timeout: float = 10.0,
        min_retry_delay: float = 0.25,
        max_retry_delay: float = 15.0,
        retry_timeout: float = 120.0,
        close_timeout: float = 10.0,
        max_event_bytes: int = 65_536,
    ) -> None:
        self._opts = _Options(
            base_url, token, batch_size, max_batch_bytes, flush_interval, max_queue, max_block, on_full, on_error, on_retry,
            request_timeout, min_retry_delay, max_retry_delay, retry_timeout, close_timeout, max_event_bytes,
        )
        self._key_prefix = uuid.uuid4().hex
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._errors: List[BaseException] = []
        self._errors_lock = threading.Lock()
        self.stats: Dict[str, int] = {"queued": 0, "sent": 0, "duplicates": 0, "batches": 0, "retries": 0, "dropped": 0, "failed": 0}
        #: Why the last attempt failed while the server cannot be reached (None once it answers again).
        self.last_failure: Optional[str] = None
        #: The monotonic clock the batching deadlines read (a test may inject one).
        self._clock: Callable[[], float] = time.monotonic

    def _failing(self, answer: Answer) -> None:
        """Remembers why sending fails; logs it when it starts (and when the cause changes), not on every retry."""
        if answer.message != self.last_failure:
            log.warning("escai_realtime: publishing to %s is failing, retrying: %s", self._opts.base_url, answer.message)
        self.last_failure = answer.message

    def _pending_error(self, pending: int, timeout: Optional[float]) -> PublishError:
        why = f"; the last attempt: {self.last_failure}" if self.last_failure else ""
        return PublishError("TIMEOUT", f"{pending} event(s) still pending after {timeout} s{why}")

    def _item(self, event: Mapping[str, Any]) -> _Item:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        return _encode(event, self._key_prefix, seq, self._opts.max_event_bytes)

    def _report(self, err: BaseException, failed: Optional[int] = None) -> None:
        """Records a failure for flush()/close() and on_error; ``failed``: how many events it lost (default: all of ``err.events``)."""
        with self._errors_lock:
            self._errors.append(err)
        if failed is None and isinstance(err, (PublishError, ValidationError)):
            failed = len(err.events)
        self.stats["failed"] += failed or 0
        handler = self._opts.on_error
        if handler is None:
            log.error("escai_realtime: %s", err)
            return
        try:
            handler(err)
        except Exception:  # noqa: BLE001 - a failing handler must not kill the sender
            log.exception("escai_realtime: on_error handler failed")

    def _raise_deferred(self) -> None:
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]

    def _retry_delay(self, answer: Answer, attempt: int, started: float, items: Sequence[_Item]) -> float:
        """The pause before the next attempt, or PublishError when retry_timeout would pass."""
        o = self._opts
        delay = 0.0 if answer.kind == "refresh" and attempt == 0 else full_jitter(attempt, o.min_retry_delay, o.max_retry_delay)
        if answer.retry_after is not None:
            delay = max(delay, answer.retry_after)
        if time.monotonic() - started + delay > o.retry_timeout:
            raise PublishError(
                answer.code or "RETRIES_EXHAUSTED",
                f"gave up after {attempt + 1} attempts in {time.monotonic() - started:.1f} s (retry_timeout {o.retry_timeout} s): {answer.message}",
                events=[i.event for i in items],
                status=answer.status,
            )
        self.stats["retries"] += 1
        self._failing(answer)
        if o.on_retry is not None:
            try:
                o.on_retry(answer, delay)
            except Exception:  # noqa: BLE001
                log.exception("escai_realtime: on_retry handler failed")
        return delay

    def _accepted(self, refs: Sequence[Dict[str, Any]]) -> None:
        if self.last_failure is not None:
            log.warning("escai_realtime: publishing to %s works again", self._opts.base_url)
            self.last_failure = None
        self.stats["batches"] += 1
        self.stats["sent"] += len(refs)
        self.stats["duplicates"] += sum(1 for r in refs if r.get("duplicate"))

    def _split(self, items: Sequence[_Item]) -> List[List[_Item]]:
        """Cuts queued items into batches within batch_size and max_batch_bytes."""
        out: List[List[_Item]] = []
        cur: List[_Item] = []
        size = 2
        for it in items:
            if cur and (len(cur) >= self._opts.batch_size or size + len(it.json) + 1 > self._opts.max_batch_bytes):
                out.append(cur)
                cur, size = [], 2
            cur.append(it)
            size += len(it.json) + 1
        if cur:
            out.append(cur)
        return out

    def _queue_full(self, item: _Item) -> None:
        """An event the full queue did not take: raised (on_full="raise") or dropped, counted and reported."""
        full = QueueFull(f"publisher queue full ({self._opts.max_queue} events) for {self._opts.max_block} s", item.event)
        if self._opts.on_full == "raise":
            raise full from None
        self.stats["dropped"] += 1
        self._report(full)

    def _attempt(self, items: List[_Item]) -> Answer:
        """One POST of the batch (blocking), with a token resolved now."""
        return post_events(self._opts.base_url, resolve_token(self._opts.token), _body(items), self._opts.request_timeout)

    def _deliver_sync(self, items: List[_Item], part: Optional[Callable[[List[_Item]], List[PublishedRef]]] = None) -> List[PublishedRef]:
        """Sends one batch until accepted or failed (blocking; retries sleep). Raises ValidationError / PublishError.

        A 413 splits it in halves, sent one after the other by ``part`` (default: this method).
        """
        started = time.monotonic()
        attempt = 0
        while True:
            answer = self._attempt(items)
            if answer.kind == "too_large" and len(items) > 1:
                send = part or self._deliver_sync
                half = len(items) // 2
                return send(items[:half]) + send(items[half:])
            outcome = self._outcome(answer, items)
            if outcome is not None:
                return outcome
            time.sleep(self._retry_delay(answer, attempt, started, items))
            attempt += 1

    def _outcome(self, answer: Answer, items: List[_Item]) -> Optional[List[PublishedRef]]:
        """The result of an attempt: refs when done, None to retry; raises when it failed for good."""
        if answer.kind == "ok":
            self._accepted(answer.refs)
            # The server's answer, as PublishedRef describes it (the client does not re-check its shape).
            return cast(List[PublishedRef], answer.refs)
        if answer.kind == "too_large":  # one event (a batch of more is split before)
            raise PublishError(answer.code, answer.message or "event too large", events=[i.event for i in items], status=413)
        if answer.kind == "refresh" and not callable(self._opts.token):
            # A fixed token that expired: asking again cannot help.
            raise PublishError(answer.code, answer.message + " (pass token= a callable to have it renewed)", events=[i.event for i in items], status=answer.status)
        if answer.kind == "refused":
            if answer.code == "VALIDATION_ERROR":
                raise ValidationError(answer.message, events=[i.event for i in items], status=answer.status)
            raise PublishError(answer.code, answer.message, events=[i.event for i in items], status=answer.status)
        return None

    def _send_batch(self, items: List[_Item]) -> List[PublishedRef]:
        """A queued batch: a validation refusal sends the other events again and reports the refused ones."""
        try:
            return self._deliver_sync(items, part=self._send_part)
        except ValidationError as err:
            rest = _without_refused(err, items)
            if rest is None:
                raise
            # err.events is the whole refused batch; only the named events failed, the rest is sent again.
            self._report(err, failed=len(items) - len(rest))
            return self._send_batch(rest)

    def _send_part(self, items: List[_Item]) -> List[PublishedRef]:
        """A half of a queued batch the server found too large (413): settled on its own, its failure reported,
        so that the other half is still sent, and a half already delivered is not sent again."""
        try:
            return self._send_batch(items)
        except EscaiError as err:
            self._report(err)
            return []


# ---- the sync publisher --------------------------------------------------------

_live: "weakref.WeakSet[Any]" = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    for pub in list(_live):
        try:
            pub._at_exit()
        except Exception:  # noqa: BLE001 - exit must go on
            log.exception("escai_realtime: flushing at exit failed")


class Publisher(_Base):
    """Publishes events from synchronous code; a background thread sends them in batches.

    >>> pub = Publisher("http://127.0.0.1:8000", token=os.environ["ESCAI_TOKEN"])
    >>> pub.epistemic_update("agent_1", {"confidence_level": 0.9, "uncertainty_score": 0.1})
    >>> pub.close()   # or: with Publisher(...) as pub: ...

    ``token``: a string, or a callable returning one (asked before each request,
    and again at once when the server answers 401 TOKEN_EXPIRED).
    """

    def __init__(self, base_url: str, token: TokenSource = None, **options: Any) -> None:
        super().__init__(base_url, token, **options)
        self._queue: "queue.Queue[_Item]" = queue.Queue(maxsize=self._opts.max_queue)
        self._cond = threading.Condition()
        self._pending = 0  # queued or in flight
        self._urgent = threading.Event()
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="escai-publisher", daemon=True)
        self._thread.start()
        _live.add(self)

    # -- the API

    def publish(self, event: Mapping[str, Any]) -> None:
        """Queues one event (see the module doc for batching, retries and a full queue)."""
        if self._closed:
            raise PublisherClosed()
        item = self._item(event)
        with self._cond:
            self._pending += 1
        try:
            self._queue.put(item, timeout=self._opts.max_block) if self._opts.max_block > 0 else self._queue.put_nowait(item)
        except queue.Full:
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()
            self._queue_full(item)
            return
        self.stats["queued"] += 1

    def publish_batch(self, events: Iterable[Mapping[str, Any]]) -> List[PublishedRef]:
        """Sends events now, as one request (or a few, by batch_size), bypassing the queue; returns their refs.

        Blocks until accepted (with retries). A refused batch raises
        ``ValidationError`` naming the field, and nothing of it is published.
        """
        items = [self._item(e) for e in events]
        refs: List[PublishedRef] = []
        for batch in self._split(items):
            refs.extend(self._deliver_sync(batch))
        return refs

    def flush(self, timeout: Optional[float] = None) -> None:
        """Sends everything queued now and waits until it is accepted or failed; raises the first failure since the last call."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            # Urgent only while something is pending: the sender clears it (under this lock) when
            # the last pending event settles, so an empty flush must not set it at all.
            if self._pending > 0:
                self._urgent.set()
            while self._pending > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise self._pending_error(self._pending, timeout)
                self._cond.wait(remaining if remaining is not None else 1.0)
        self._raise_deferred()

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes (for at most ``timeout``, default ``close_timeout``), stops the thread; raises the first failure since the last call."""
        if self._closed:
            self._raise_deferred()
            return
        self._closed = True
        try:
            self.flush(self._opts.close_timeout if timeout is None else timeout)
        finally:
            self._stop.set()
            self._urgent.set()
            self._thread.join(timeout=1.0)
            _live.discard(self)

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- typed helpers

    def epistemic_update(self, agent_id: str, state: EpistemicState, *, idempotency_key: Optional[str] = None) -> None:
        self.publish(epistemic_update_event(agent_id, state, idempotency_key=idempotency_key))

    def pattern_alert(self, agent_id: str, pattern: BehavioralPattern, *, severity: str = "info", alert_type: str = "pattern_detected", idempotency_key: Optional[str] = None) -> None:
        self.publish(pattern_alert_event(agent_id, pattern, severity=severity, alert_type=alert_type, idempotency_key=idempotency_key))

    def prediction_update(self, agent_id: str, prediction: PredictionResult, *, idempotency_key: Optional[str] = None) -> None:
        self.publish(prediction_update_event(agent_id, prediction, idempotency_key=idempotency_key))

    def agent_status(self, agent_id: str, status: str, metadata: Optional[Mapping[str, Any]] = None, *, idempotency_key: Optional[str] = None) -> None:
        self.publish(agent_status_event(agent_id, status, metadata, idempotency_key=idempotency_key))

    def system_alert(self, alert_type: str, message: str, *, severity: str = "info", metadata: Optional[Mapping[str, Any]] = None, idempotency_key: Optional[str] = None) -> None:
        self.publish(system_alert_event(alert_type, message, severity=severity, metadata=metadata, idempotency_key=idempotency_key))

    def notify_user(self, user_id: str, notification_type: str, message: str, data: Optional[Mapping[str, Any]] = None, *, idempotency_key: Optional[str] = None) -> None:
        self.publish(user_notification_event(user_id, notification_type, message, data, idempotency_key=idempotency_key))

    # -- the sender thread

    def _collect(self) -> List[_Item]:
        """Waits for a first event, then gathers more until a bound is reached; [] when stopping with nothing queued."""
        o = self._opts
        while True:
            try:
                first = self._queue.get(timeout=0.2)
                break
            except queue.Empty:
                if self._stop.is_set():
                    return []
        batch = [first]
        size = len(first.json) + 2
        deadline = self._clock() + o.flush_interval
        while len(batch) < o.batch_size:
            # Read before the queue: flush() sets it after its caller's last put, so when it is seen
            # set, that event is already visible here and joins this batch (not a batch of its own).
            urgent = self._urgent.is_set() or self._stop.is_set()
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                if urgent:
                    break
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=min(remaining, 0.05))
                except queue.Empty:
                    continue
            if size + len(nxt.json) + 1 > o.max_batch_bytes:
                # Over the byte bound: send what we have, this one starts the next batch.
                self._send_and_settle(batch)
                batch, size = [nxt], len(nxt.json) + 2
                deadline = self._clock() + o.flush_interval
                continue
            batch.append(nxt)
            size += len(nxt.json) + 1
        return batch

    def _send_and_settle(self, batch: List[_Item]) -> None:
        try:
            self._send_batch(batch)
        except EscaiError as err:
            self._report(err)
        except Exception as err:  # noqa: BLE001 - never let the thread die
            self._report(PublishError("INTERNAL", f"{type(err).__name__}: {err}", events=[i.event for i in batch]))
        finally:
            with self._cond:
                self._pending -= len(batch)
                if self._pending <= 0:
                    self._urgent.clear()
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._collect()
            if not batch:
                return
            self._send_and_settle(batch)

    def _at_exit(self) -> None:
        if not self._closed:
            try:
                self.close()
            except EscaiError as err:
                log.error("escai_realtime: at exit: %s", err)


# ---- the asyncio publisher -----------------------------------------------------


class AsyncPublisher(_Base):
    """Publishes events from asyncio code; a task sends them in batches.

    >>> async with AsyncPublisher("http://127.0.0.1:8000", token=tok) as pub:
    ...     await pub.epistemic_update("agent_1", {"confidence_level": 0.9})

    Each HTTP request runs in a one-thread executor of the publisher's own
    (urllib, stdlib); waits between retries are ``asyncio.sleep``. The task
    starts on the first ``publish``. ``await close()`` is the reliable way to
    end; at interpreter exit whatever is still queued is sent synchronously
    (best effort, within ``close_timeout``).
    """

    def __init__(self, base_url: str, token: TokenSource = None, **options: Any) -> None:
        super().__init__(base_url, token, **options)
        self._queue: Optional["asyncio.Queue[_Item]"] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="escai-async-publisher")
        self._pending = 0
        self._idle: Optional[asyncio.Event] = None
        self._urgent: Optional[asyncio.Event] = None
        self._closed = False
        _live.add(self)

    def _ensure_started(self) -> "asyncio.Queue[_Item]":
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self._opts.max_queue)
            self._idle = asyncio.Event()
            self._idle.set()
            self._urgent = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="escai-async-publisher")
        return self._queue

    async def publish(self, event: Mapping[str, Any]) -> None:
        """Queues one event; waits at most ``max_block`` seconds for room (see the module doc)."""
        if self._closed:
            raise PublisherClosed()
        item = self._item(event)
        q = self._ensure_started()
        assert self._idle is not None
        # Counted before it is queued: the sender may take it (and settle it) before we resume.
        self._pending += 1
        self._idle.clear()
        try:
            q.put_nowait(item)
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(q.put(item), timeout=self._opts.max_block)
            except asyncio.TimeoutError:
                self._pending -= 1
                if self._pending <= 0:
                    self._idle.set()
                self._queue_full(item)
                return
        self.stats["queued"] += 1

    async def publish_batch(self, events: Iterable[Mapping[str, Any]]) -> List[PublishedRef]:
        """Sends events now, bypassing the queue (see ``Publisher.publish_batch``)."""
        items = [self._item(e) for e in events]
        refs: List[PublishedRef] = []
        for batch in self._split(items):
            refs.extend(await self._deliver(batch))
        return refs

    async def flush(self, timeout: Optional[float] = None) -> None:
        """Sends everything queued now and waits until accepted or failed; raises the first failure since the last call."""
        if self._idle is not None and self._pending > 0:
            assert self._urgent is not None
            self._urgent.set()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except asyncio.TimeoutError:
                raise self._pending_error(self._pending, timeout) from None
        self._raise_deferred()

    async def close(self, timeout: Optional[float] = None) -> None:
        if self._closed:
            self._raise_deferred()
            return
        self._closed = True
        try:
            await self.flush(self._opts.close_timeout if timeout is None else timeout)
        finally:
            if self._task is not None:
                self._task.cancel()
                try:
                    await self._task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
            self._executor.shutdown(wait=False)
            _live.discard(self)

    async def __aenter__(self) -> "AsyncPublisher":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- typed helpers

    async def epistemic_update(self, agent_id: str, state: EpistemicState, *, idempotency_key: Optional[str] = None) -> None:
        await self.publish(epistemic_update_event(agent_id, state, idempotency_key=idempotency_key))

    async def pattern_alert(self, agent_id: str, pattern: BehavioralPattern, *, severity: str = "info", alert_type: str = "pattern_detected", idempotency_key: Optional[str] = None) -> None:
        await self.publish(pattern_alert_event(agent_id, pattern, severity=severity, alert_type=alert_type, idempotency_key=idempotency_key))

    async def prediction_update(self, agent_id: str, prediction: PredictionResult, *, idempotency_key: Optional[str] = None) -> None:
        await self.publish(prediction_update_event(agent_id, prediction, idempotency_key=idempotency_key))

    async def agent_status(self, agent_id: str, status: str, metadata: Optional[Mapping[str, Any]] = None, *, idempotency_key: Optional[str] = None) -> None:
        await self.publish(agent_status_event(agent_id, status, metadata, idempotency_key=idempotency_key))

    async def system_alert(self, alert_type: str, message: str, *, severity: str = "info", metadata: Optional[Mapping[str, Any]] = None, idempotency_key: Optional[str] = None) -> None:
        await self.publish(system_alert_event(alert_type, message, severity=severity, metadata=metadata, idempotency_key=idempotency_key))

    async def notify_user(self, user_id: str, notification_type: str, message: str, data: Optional[Mapping[str, Any]] = None, *, idempotency_key: Optional[str] = None) -> None:
        await self.publish(user_notification_event(user_id, notification_type, message, data, idempotency_key=idempotency_key))

    # -- the sender task

    async def _deliver(self, items: List[_Item], part: Optional[Callable[[List[_Item]], Awaitable[List[PublishedRef]]]] = None) -> List[PublishedRef]:
        """As ``_deliver_sync``, the request in the executor; a 413's halves are sent by ``part`` (default: this method)."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        attempt = 0
        while True:
            answer = await loop.run_in_executor(self._executor, self._attempt, items)
            if answer.kind == "too_large" and len(items) > 1:
                send = part or self._deliver
                half = len(items) // 2
                return await send(items[:half]) + await send(items[half:])
            outcome = self._outcome(answer, items)
            if outcome is not None:
                return outcome
            await asyncio.sleep(self._retry_delay(answer, attempt, started, items))
            attempt += 1

    async def _send(self, items: List[_Item]) -> List[PublishedRef]:
        """A queued batch (see ``_send_batch``)."""
        try:
            return await self._deliver(items, part=self._send_part_async)
        except ValidationError as err:
            rest = _without_refused(err, items)
            if rest is None:
                raise
            self._report(err, failed=len(items) - len(rest))
            return await self._send(rest)

    async def _send_part_async(self, items: List[_Item]) -> List[PublishedRef]:
        """A half of a queued batch after a 413 (as ``_send_part``, which ``_at_exit`` uses through ``_send_batch``)."""
        try:
            return await self._send(items)
        except EscaiError as err:
            self._report(err)
            return []

    async def _run(self) -> None:
        assert self._queue is not None and self._idle is not None and self._urgent is not None
        q, o = self._queue, self._opts
        while True:
            batch = [await q.get()]
            size = len(batch[0].json) + 2
            deadline = self._clock() + o.flush_interval
            while len(batch) < o.batch_size:
                if q.empty():
                    if self._urgent.is_set():
                        break
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        break
                    getter = asyncio.ensure_future(q.get())
                    urgent = asyncio.ensure_future(self._urgent.wait())
                    done, _ = await asyncio.wait({getter, urgent}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                    urgent.cancel()
                    if getter not in done:
                        getter.cancel()
                        try:
                            nxt = await getter  # it may have completed while being cancelled
                        except asyncio.CancelledError:
                            continue
                    else:
                        nxt = getter.result()
                else:
                    nxt = q.get_nowait()
                if size + len(nxt.json) + 1 > o.max_batch_bytes:
                    # Over the byte bound: send what we have; this one starts the next batch, with a deadline of its own.
                    await self._settle(batch)
                    batch, size = [nxt], len(nxt.json) + 2
                    deadline = self._clock() + o.flush_interval
                    continue
                batch.append(nxt)
                size += len(nxt.json) + 1
            await self._settle(batch)

    async def _settle(self, batch: List[_Item]) -> None:
        assert self._idle is not None and self._urgent is not None
        try:
            await self._send(batch)
        except EscaiError as err:
            self._report(err)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001
            self._report(PublishError("INTERNAL", f"{type(err).__name__}: {err}", events=[i.event for i in batch]))
        finally:
            self._pending -= len(batch)
            if self._pending <= 0:
                self._pending = 0
                self._urgent.clear()
                self._idle.set()

    def _at_exit(self) -> None:
        """The loop is gone: send what is still queued, synchronously (best effort)."""
        if self._closed or self._queue is None:
            return
        self._closed = True
        items: List[_Item] = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        deadline = time.monotonic() + self._opts.close_timeout
        for batch in self._split(items):
            if time.monotonic() > deadline:
                log.error("escai_realtime: at exit: %d event(s) not sent (close_timeout)", len(batch))
                continue
            try:
                self._send_batch(batch)
            except EscaiError as err:
                log.error("escai_realtime: at exit: %s", err)
