"""The error and close-code catalogue of ``src/protocol/codes.ts``: what a client should do.

Only the decisions a client needs (HTTP status, retry?, reconnect?, which
error a close code names). The test suite checks this copy against the
server's (test/python-client.test.ts; CLOSE_REFUSALS: test/auth-close-codes.test.ts).
"""
from __future__ import annotations

# code -> (HTTP status, retry?)
ERROR_CODES: dict[str, tuple[int, bool]] = {
    "INVALID_JSON": (400, False),
    "INTERNAL_ERROR": (500, True),
    "PERMISSION_DENIED": (403, False),
    "AGENT_ACCESS_DENIED": (403, False),
    "SUBSCRIPTION_EXISTS": (409, False),
    "VALIDATION_ERROR": (400, False),
    "SUBSCRIPTION_NOT_FOUND": (404, False),
    "UNKNOWN_MESSAGE_TYPE": (400, False),
    "RATE_LIMITED": (429, True),
    "TOO_MANY_SUBSCRIPTIONS": (409, False),
    "TOKEN_MISSING": (401, False),
    "TOKEN_INVALID": (401, False),
    "TOKEN_EXPIRED": (401, False),
    "TOKEN_NOT_YET_VALID": (401, True),
    "ORIGIN_NOT_ALLOWED": (403, False),
    "SERVER_AT_CAPACITY": (503, True),
    "SHUTTING_DOWN": (503, True),
    "ENGINE_UNAVAILABLE": (503, True),
    "USER_CONNECTION_LIMIT": (429, True),
    "IP_CONNECTION_LIMIT": (429, True),
    "UNSUPPORTED_WEBSOCKET_VERSION": (426, False),
    "NOT_FOUND": (404, False),
    "AGENT_NOT_FOUND": (404, False),
    "CONNECTION_NOT_FOUND": (404, False),
    "BAD_REQUEST": (400, False),
    "PAYLOAD_TOO_LARGE": (413, False),
}

# close code -> reconnect?
CLOSE_CODES: dict[int, bool] = {
    1000: False,  # normal close
    1001: True,  # server shutting down
    1008: True,  # inbound rate limit exceeded repeatedly
    1009: True,  # inbound message too big
    1011: True,  # unexpected server error
    4001: True,  # token expired without a valid refresh: reconnect with a new token
    4003: False,  # refresh carried another sub, or lost websocket:connect
    4008: True,  # slow consumer
    4010: False,  # closed by an administrator
    # 44xx: first-message auth refused after the 101, one code per catalogue code (CLOSE_REFUSALS)
    4400: False,  # TOKEN_MISSING
    4401: False,  # TOKEN_INVALID
    4402: True,  # TOKEN_EXPIRED: reconnect only with a new token
    4403: True,  # TOKEN_NOT_YET_VALID
    4410: False,  # PERMISSION_DENIED
    4420: True,  # USER_CONNECTION_LIMIT
    4430: True,  # SHUTTING_DOWN
    4431: True,  # ENGINE_UNAVAILABLE
    4432: True,  # INTERNAL_ERROR
}

# close code -> the catalogue error code it stands for (the refusals of first-message auth, after the 101)
CLOSE_REFUSALS: dict[int, str] = {
    4400: "TOKEN_MISSING",
    4401: "TOKEN_INVALID",
    4402: "TOKEN_EXPIRED",
    4403: "TOKEN_NOT_YET_VALID",
    4410: "PERMISSION_DENIED",
    4420: "USER_CONNECTION_LIMIT",
    4430: "SHUTTING_DOWN",
    4431: "ENGINE_UNAVAILABLE",
    4432: "INTERNAL_ERROR",
}

#: The close codes after which reconnecting makes sense only with a new token (a fixed token would be refused again).
NEEDS_NEW_TOKEN: frozenset[int] = frozenset({4001, 4402})


def error_is_retryable(code: str | None) -> bool:
    """Whether a request refused with ``code`` may succeed if sent again later (unknown codes: no)."""
    entry = ERROR_CODES.get(code or "")
    return entry is not None and entry[1]


def close_allows_reconnect(code: int) -> bool:
    """Whether to reconnect after the server closed with ``code`` (unknown codes: yes, with backoff)."""
    return CLOSE_CODES.get(code, True)


def close_refusal(code: int) -> str | None:
    """The catalogue error code a close code stands for (first-message auth refusals), else None."""
    return CLOSE_REFUSALS.get(code)
