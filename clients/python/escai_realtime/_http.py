"""One POST /api/v1/events over urllib (stdlib), and what to do with its answer."""
from __future__ import annotations

import email.utils
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from .codes import error_is_retryable

TokenSource = Union[str, Callable[[], str], None]


@dataclass
class Answer:
    """What one attempt came to.

    kind: ``ok`` (refs), ``retry`` (transient: network, 429, 5xx; ``retry_after``
    seconds when the server said), ``refresh`` (401 TOKEN_EXPIRED: ask the token
    source again), ``too_large`` (413: split the batch), ``refused`` (a refusal
    retrying cannot fix: ``code``, ``message``, ``status``).
    """

    kind: str
    refs: list[dict[str, Any]] = field(default_factory=list)
    status: Optional[int] = None
    code: str = ""
    message: str = ""
    retry_after: Optional[float] = None


def resolve_token(token: TokenSource) -> Optional[str]:
    if token is None:
        return None
    if callable(token):
        return token()
    return token


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_of(body: bytes) -> tuple[str, str]:
    try:
        err = json.loads(body.decode("utf-8")).get("error") or {}
        return str(err.get("code") or ""), str(err.get("message") or "")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return "", body[:200].decode("utf-8", "replace")


def network_cause(err: BaseException) -> str:
    """Why a request never got an HTTP answer, in words: refused, DNS, TLS, timed out, reset."""
    reason = getattr(err, "reason", err)
    if isinstance(reason, BaseException) and reason is not err:
        return network_cause(reason)
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the server running, on this host and port?)"
    if isinstance(err, socket.gaierror):
        return f"DNS lookup failed ({err.strerror or err})"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({err.verify_message or err})"
    if isinstance(err, ssl.SSLError):
        return f"TLS failed ({err.reason or err})"
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "timed out waiting for the server"
    if isinstance(err, ConnectionResetError):
        return "connection reset by the server or a proxy"
    return f"{type(err).__name__}: {reason}"


def post_events(base_url: str, token: Optional[str], body: bytes, timeout: float) -> Answer:
    """POSTs a JSON array of events to ``{base_url}/api/v1/events`` once and classifies the answer."""
    url = base_url.rstrip("/") + "/api/v1/events"
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "escai-realtime-python"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            payload = json.loads(res.read().decode("utf-8"))
            return Answer("ok", refs=list(payload.get("events") or []), status=res.status)
    except urllib.error.HTTPError as err:
        raw = err.read() if err.fp is not None else b""
        code, message = _error_of(raw)
        status = err.code
        retry_after = parse_retry_after(err.headers.get("Retry-After") if err.headers else None)
        if status == 401 and code == "TOKEN_EXPIRED":
            return Answer("refresh", status=status, code=code, message=message)
        if status == 413:
            return Answer("too_large", status=status, code=code or "PAYLOAD_TOO_LARGE", message=message)
        if status in (429, 502, 503, 504) or (status >= 500 and not code) or error_is_retryable(code):
            return Answer("retry", status=status, code=code or f"HTTP_{status}", message=f"{url} answered HTTP {status}" + (f" {code}: {message}" if code or message else ""), retry_after=retry_after)
        return Answer("refused", status=status, code=code or f"HTTP_{status}", message=message or f"{url} answered HTTP {status}")
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError, OSError) as err:
        # The request may or may not have reached the server: retried with the
        # same idempotency keys, so an event accepted before the drop is not delivered twice.
        return Answer("retry", code="NETWORK", message=f"cannot reach {url}: {network_cause(err)}")
    except ValueError as err:  # a 2xx whose body is not JSON (a proxy?)
        return Answer("retry", code="BAD_ANSWER", message=str(err))
