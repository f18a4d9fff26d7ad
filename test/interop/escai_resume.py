"""A plain ESCAI client (no offsets, no SDK) that reconnects with the same session id.

Usage: escai_resume.py BASE_URL SECRET [AWAY_SECONDS]
Connects to /ws/monitor/py_resume_session, subscribes to epistemic_updates for
agent_1, prints READY, closes the connection, prints DISCONNECTED, stays away
AWAY_SECONDS (default 10) while the test publishes 50 events (data.seq 1..50),
then reconnects with the same session id and reads the events it missed.
Prints phase lines, then one JSON line with what it saw; exits 1 on failure.
"""
import asyncio
import json
import sys
import time

import jwt
import websockets

SESSION = "py_resume_session"


def token(secret, sub, roles):
    now = int(time.time())
    return jwt.encode({"sub": sub, "roles": roles, "iat": now, "exp": now + 300}, secret, algorithm="HS256")


def say(line):
    print(line, flush=True)


async def next_of(ws, types, timeout=10):
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))
        if msg["type"] in types:
            return msg


async def main(base, secret, away):
    uri = base.replace("http", "ws", 1) + "/ws/monitor/" + SESSION + "?token=" + token(secret, "py_resume_user", ["researcher"])
    async with websockets.connect(uri) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "connection_established", hello
        assert hello["session_id"] == SESSION, hello
        await ws.send(json.dumps({"type": "subscribe", "data": {"type": "epistemic_updates", "agent_id": "agent_1"}}))
        confirmed = await next_of(ws, {"subscription_confirmed", "error"})
        assert confirmed["type"] == "subscription_confirmed", confirmed
        say("READY")
    # The connection is closed (close handshake done).
    left = time.monotonic()
    say("DISCONNECTED")
    await asyncio.sleep(away)

    seen = {}
    # A fresh token of the same user: resuming must not depend on reusing the old one.
    uri = base.replace("http", "ws", 1) + "/ws/monitor/" + SESSION + "?token=" + token(secret, "py_resume_user", ["researcher"])
    async with websockets.connect(uri) as ws:
        seen["away_seconds"] = round(time.monotonic() - left, 2)
        hello = json.loads(await ws.recv())
        assert hello["type"] == "connection_established", hello
        seen["resumed"] = hello.get("resumed")
        seen["subscriptions"] = hello.get("subscriptions")
        seqs = []
        offsets = []
        while len(seqs) < 50:
            event = await next_of(ws, {"epistemic_update"})
            assert event["agent_id"] == "agent_1", event
            seqs.append(event["data"]["seq"])
            offsets.append(event.get("offset"))
        seen["seqs"] = seqs
        seen["offsets_increasing"] = all(isinstance(o, int) for o in offsets) and all(b > a for a, b in zip(offsets, offsets[1:]))
        # Anything more before the pong would be a duplicate.
        await ws.send(json.dumps({"type": "ping"}))
        extra = 0
        while True:
            msg = await next_of(ws, {"pong", "epistemic_update"})
            if msg["type"] == "pong":
                break
            extra += 1
        seen["extra"] = extra
    say(json.dumps(seen))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 10.0))
    except Exception as exc:  # noqa: BLE001 - report any failure to the test
        say(json.dumps({"error": repr(exc)}))
        sys.exit(1)
