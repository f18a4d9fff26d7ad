"""A plain ESCAI client, written the way the protocol page describes, used as an interop check.

Usage: escai_client.py BASE_URL SECRET
Connects with ?token=, subscribes to epistemic_updates for agent_1 with
{"confidence_level": {"min": 0.8}}, publishes a low- and a high-confidence
update through the HTTP API, and checks that only the high one arrives and
that ping gets pong. Prints one JSON line with what it saw; exits 1 on failure.
"""
import asyncio
import json
import sys
import time
import urllib.request

import jwt
import websockets


def token(secret, sub, roles):
    now = int(time.time())
    return jwt.encode({"sub": sub, "roles": roles, "iat": now, "exp": now + 300}, secret, algorithm="HS256")


def publish(base, secret, event):
    req = urllib.request.Request(
        base + "/api/v1/events",
        data=json.dumps(event).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + token(secret, "py_producer", ["developer"])},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 202, resp.status
        return json.loads(resp.read())


async def next_of(ws, types):
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout=5)
        assert isinstance(raw, str), "the server sent a binary frame; the protocol is JSON text"
        msg = json.loads(raw)
        if msg["type"] in types:
            return msg


async def main(base, secret):
    uri = base.replace("http", "ws", 1) + "/ws/monitor/py_session?token=" + token(secret, "py_user", ["researcher"])
    seen = {}
    async with websockets.connect(uri) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "connection_established", hello
        seen["session_id"] = hello["session_id"]
        seen["user_id"] = hello["user_id"]
        await ws.send(json.dumps({
            "type": "subscribe",
            "data": {"type": "epistemic_updates", "agent_id": "agent_1", "filters": {"confidence_level": {"min": 0.8}}},
        }))
        confirmed = await next_of(ws, {"subscription_confirmed", "error"})
        assert confirmed["type"] == "subscription_confirmed", confirmed
        for confidence in (0.3, 0.9):
            publish(base, secret, {"type": "epistemic_update", "agent_id": "agent_1",
                                   "data": {"agent_id": "agent_1", "confidence_level": confidence, "uncertainty_score": 1 - confidence,
                                            "belief_states": [], "goal_states": [], "knowledge_state": None}})
        event = await next_of(ws, {"epistemic_update"})
        seen["received_confidence"] = event["data"]["confidence_level"]
        assert event["agent_id"] == "agent_1", event
        assert event["data"]["confidence_level"] == 0.9, "the filter let a low-confidence update through"
        await ws.send(json.dumps({"type": "ping"}))
        pong = await next_of(ws, {"pong", "epistemic_update"})
        assert pong["type"] == "pong", "received another update where only pong was expected: %r" % pong
        seen["pong"] = True
    print(json.dumps(seen))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    except Exception as exc:  # noqa: BLE001 - report any failure to the test
        print(json.dumps({"error": repr(exc)}))
        sys.exit(1)
