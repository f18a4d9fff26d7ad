"""A small shim over the websockets API, which moved between releases.

- websockets >= 13: ``websockets.asyncio.client.connect(uri, additional_headers=...)``;
  a refused handshake raises ``InvalidStatus`` carrying the response (status,
  headers, body).
- websockets 10.x-12.x (Debian bookworm ships 10.4): the "legacy"
  ``websockets.legacy.client.connect(uri, extra_headers=...)``; a refused
  handshake raises ``InvalidStatusCode`` (status and headers, no body).

Both give a connection with ``send``, ``recv`` and ``close``, answer protocol
pings by themselves, and raise ``websockets.exceptions.ConnectionClosed``.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Mapping, Optional, Tuple

try:
    import websockets
    from websockets.exceptions import ConnectionClosed
except ImportError:  # one line that says what to install, not a traceback into the shim
    raise ImportError(
        "escai_realtime needs the 'websockets' package (10.4 or later) in this interpreter: "
        "apt install python3-websockets (Debian/Ubuntu, for /usr/bin/python3) or python3 -m pip install websockets"
    ) from None

# Chosen at run time, by name: a static ``from websockets.asyncio.client import``
# cannot type-check against both releases (10.4 has no such module; 13+ has
# both), and ``connect`` is called through ``**kwargs`` anyway.
_client: ModuleType
try:  # websockets >= 13
    _client = importlib.import_module("websockets.asyncio.client")
    HEADERS_ARG = "additional_headers"
    IMPLEMENTATION = "asyncio"
except ImportError:  # websockets 10-12
    _client = importlib.import_module("websockets.legacy.client")
    HEADERS_ARG = "extra_headers"
    IMPLEMENTATION = "legacy"
_connect: Any = _client.connect

VERSION: str = getattr(websockets, "__version__", "unknown")

__all__ = ["ConnectionClosed", "connect", "refusal", "close_info", "VERSION", "IMPLEMENTATION"]


async def connect(uri: str, headers: Mapping[str, str], *, open_timeout: float, max_size: Optional[int], ping_interval: Optional[float], ping_timeout: Optional[float]) -> Any:
    """Opens a client connection with extra handshake headers, whichever websockets is installed."""
    kwargs: dict[str, Any] = {
        HEADERS_ARG: dict(headers),
        "open_timeout": open_timeout,
        "max_size": max_size,
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "close_timeout": 2,
    }
    return await _connect(uri, **kwargs)


def refusal(exc: BaseException) -> Optional[Tuple[int, Mapping[str, str], bytes]]:
    """(status, headers, body) when ``exc`` is a refused handshake (body empty where the library does not keep it)."""
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "status_code"):
        return int(response.status_code), response.headers, bytes(getattr(response, "body", b"") or b"")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status, getattr(exc, "headers", {}) or {}, b""
    return None


def close_info(exc: ConnectionClosed) -> Tuple[int, str]:
    """The close code and reason the server sent (1006 when no close frame came)."""
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return int(rcvd.code), str(rcvd.reason or "")
    return 1006, ""
