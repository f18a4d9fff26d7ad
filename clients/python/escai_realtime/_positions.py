"""The watcher's delivery guarantee as a pure unit: positions per stream and event type, and duplicates.

No socket, no timer: the watcher feeds it events and confirmations and asks it
what ``since`` to send. It follows the same rules, under the same names, as
the TypeScript SDK's ``src/client/positions.ts``; both are held to one
transcript, ``test/fixtures/client-transcript.json``
(``tests/test_transcript.py`` here, ``test/client-transcript.test.ts`` there).

The rules, in order:

- an event whose ``event_id`` was delivered already is a duplicate;
- an event at or below the position of its epoch is a duplicate;
- otherwise it is delivered and becomes the position (a new epoch resets it:
  the stream's history was lost and offsets start again);
- an event without offset/epoch is judged by its id only.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Literal, Mapping, Optional, Tuple

from .models import StreamPosition

Verdict = Literal["deliver", "duplicate"]

#: Event ids remembered for de-duplication by default: a bound, so a long-lived watcher does not grow.
DEFAULT_DEDUP_WINDOW = 10_000


def stream_of(event: Mapping[str, Any]) -> str:
    """The stream an event came on, as positions key it (``agent:{id}``, ``activity:{id}``, ``system``; a user's own
    notifications: ``user``, the watcher's only user stream, whose full name it need not know)."""
    etype = event.get("type")
    if etype == "system_alert":
        return "system"
    if etype == "user_notification":
        return "user"
    prefix = "activity:" if etype == "agent_activity" else "agent:"
    return f"{prefix}{event.get('agent_id') or ''}"


class Positions:
    """Last offset/epoch delivered per (stream, event type), and the ids of the latest events delivered.

    Per type, not per stream: each subscription replays only its own type, so
    two subscriptions on one agent recover independently.

    >>> positions = Positions()
    >>> positions.accept({"stream": "agent:a1", "type": "epistemic_update", "offset": 3, "epoch": "e", "event_id": "x"})
    'deliver'
    >>> positions.since("agent:a1", "epistemic_update")
    {'offset': 3, 'epoch': 'e'}
    """

    def __init__(self, dedup_window: int = DEFAULT_DEDUP_WINDOW) -> None:
        if not isinstance(dedup_window, int) or dedup_window < 0:
            raise ValueError(f"dedup_window must be a whole number >= 0, got {dedup_window!r}")
        self._seen: Dict[Tuple[str, str], StreamPosition] = {}
        # Delivered ids, oldest first: the window evicts from the front.
        # Delivered event ids (to their (stream, type) key), oldest first: the window evicts from the front.
        self._ids: "OrderedDict[str, Tuple[str, str]]" = OrderedDict()
        self._window = dedup_window

    def get(self, stream: str, event_type: str) -> Optional[StreamPosition]:
        """The last position seen on ``stream`` for ``event_type``, if any (a copy)."""
        pos = self._seen.get((stream, event_type))
        return {"offset": pos["offset"], "epoch": pos["epoch"]} if pos is not None else None

    def since(self, stream: Optional[str], event_type: str) -> Optional[StreamPosition]:
        """The ``since`` to send when (re)subscribing: the last position seen, or None (nothing seen, or no single
        stream: an all-agents subscription, which only a session resume can recover)."""
        return None if stream is None else self.get(stream, event_type)

    def set(self, stream: str, event_type: str, position: Mapping[str, Any]) -> None:
        """Sets the position outright: the application's ``since`` (a replay it asked for: the ids of that stream
        and type delivered before are forgotten, so the replay is delivered again), or the server's ``recovery_failed``."""
        key = (stream, event_type)
        self._seen[key] = {"offset": int(position["offset"]), "epoch": str(position["epoch"])}
        for eid in [e for e, of in self._ids.items() if of == key]:
            del self._ids[eid]

    def accept(self, event: Mapping[str, Any]) -> Verdict:
        """Judges an arriving event (``stream``, ``type``, ``offset``, ``epoch``, ``event_id``) and records it when delivered."""
        eid = event.get("event_id")
        if isinstance(eid, str) and eid in self._ids:
            return "duplicate"
        offset, epoch = event.get("offset"), event.get("epoch")
        key = (str(event["stream"]), str(event["type"]))
        # bool is an int to Python, never an offset.
        if isinstance(offset, int) and not isinstance(offset, bool) and isinstance(epoch, str):
            seen = self._seen.get(key)
            if seen is not None and seen["epoch"] == epoch and offset <= seen["offset"]:
                return "duplicate"
            self._seen[key] = {"offset": offset, "epoch": epoch}
        if isinstance(eid, str) and self._window > 0:
            self._ids[eid] = key
            if len(self._ids) > self._window:
                self._ids.popitem(last=False)
        return "deliver"

    def confirm(self, stream: Optional[str], event_type: str, confirmation: Mapping[str, Any]) -> None:
        """A subscription on ``stream`` was confirmed: unless a replay from our own position follows
        (``recovered`` true), start from the confirmed position, so that a drop before the first event still
        recovers (or reports) the gap. Never backwards within an epoch: a later event may already be delivered."""
        recovered, offset, epoch = confirmation.get("recovered"), confirmation.get("offset"), confirmation.get("epoch")
        if stream is None or recovered is True or not isinstance(offset, int) or isinstance(offset, bool) or not isinstance(epoch, str):
            return
        seen = self._seen.get((stream, event_type))
        if seen is None or seen["epoch"] != epoch or seen["offset"] < offset:
            self._seen[(stream, event_type)] = {"offset": offset, "epoch": epoch}
