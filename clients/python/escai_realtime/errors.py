"""Exceptions of the ESCAI Realtime client."""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence


class EscaiError(Exception):
    """A refusal or failure, with the catalogue ``code`` when the server named one."""

    def __init__(self, code: str, message: str, *, status: Optional[int] = None) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.status = status


class ValidationError(EscaiError):
    """The server (or the client, before sending) refused an event; ``field`` names what is wrong.

    ``field`` is the first field named, e.g. ``events[1].data.confidence_level``;
    ``index`` is the refused event's position in ``events`` (the batch that
    was refused whole), when known.
    """

    def __init__(self, message: str, *, events: Sequence[Any] = (), status: Optional[int] = 400) -> None:
        super().__init__("VALIDATION_ERROR", message, status=status)
        m = re.match(r"\s*((?:events\[\d+\]|event)?[A-Za-z0-9_.\[\]]*)\s*:", message)
        self.field: Optional[str] = m.group(1) if m and m.group(1) else None
        idx = re.match(r"\s*events\[(\d+)\]", message)
        self.index: Optional[int] = int(idx.group(1)) if idx else None
        self.events = list(events)

    @property
    def event(self) -> Any:
        """The refused event, when the message names its index."""
        if self.index is not None and self.index < len(self.events):
            return self.events[self.index]
        return None


class PublishError(EscaiError):
    """Events could not be published (a refusal retrying cannot fix, or retries ran out); ``events`` holds them."""

    def __init__(self, code: str, message: str, *, events: Sequence[Any] = (), status: Optional[int] = None) -> None:
        super().__init__(code, message, status=status)
        self.events = list(events)


class QueueFull(EscaiError):
    """The publisher's queue stayed full for ``max_block`` seconds (``on_full="raise"``); the event was not queued."""

    def __init__(self, message: str, event: Any = None) -> None:
        super().__init__("QUEUE_FULL", message)
        self.event = event


class PublisherClosed(EscaiError):
    def __init__(self) -> None:
        super().__init__("CLOSED", "the publisher is closed")


class TerminalError(EscaiError):
    """The watcher stopped for good: a refusal that retrying cannot fix (handshake refused, close 4003/4010/1000…).

    ``close_code`` is the WebSocket close code (None for a refused handshake,
    whose HTTP ``status`` and catalogue ``code`` are set instead).
    """

    def __init__(self, code: str, message: str, *, status: Optional[int] = None, close_code: Optional[int] = None) -> None:
        super().__init__(code, message, status=status)
        self.close_code = close_code


class SubscriptionRefused(EscaiError):
    """The server refused a subscription for good (permission, validation); ``subscription`` says which."""

    def __init__(self, code: str, message: str, subscription: Any) -> None:
        super().__init__(code, message)
        self.subscription = subscription


class RecoveryFailedError(EscaiError):
    """Raised instead of yielding a ``recovery_failed`` notice when the watcher runs with ``raise_on_recovery_failed``."""

    def __init__(self, subscription: Any, reason: str) -> None:
        super().__init__("RECOVERY_FAILED", reason)
        self.subscription = subscription
        self.reason = reason
