"""The client transcript (test/fixtures/client-transcript.json), fed to the watcher's pure positions (_positions.py).

The TypeScript SDK passes the same transcript (test/client-transcript.test.ts):
one set of rules for resume and duplicates. Needs no server.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from escai_realtime._positions import Positions, stream_of
from escai_realtime.models import StreamPosition

FIXTURE = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "client-transcript.json"
SCENARIOS: List[Dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["scenarios"]


def play(scenario: Dict[str, Any]) -> List[str]:
    """Plays one scenario against fresh positions; returns the ids delivered, asserting every step on the way."""
    positions = Positions()
    subs = {s["id"]: s for s in scenario["subscriptions"]}
    delivered: List[str] = []
    for i, step in enumerate(scenario["steps"]):
        where = f"{scenario['name']}, step {i} ({step['op']})"
        op = step["op"]
        if op == "subscribe":
            sub = subs[step["sub"]]
            if step.get("since") is not None:
                positions.set(sub["stream"], sub["type"], step["since"])
        elif op == "event":
            # The fixture's stream is what the watcher derives from the event itself.
            assert stream_of(step) == step["stream"], where
            event = {k: step[k] for k in ("stream", "type", "offset", "epoch", "event_id") if k in step}
            verdict = positions.accept(event)
            assert verdict == step["expect"], f"{where}: {step['event_id']} at {step.get('offset')}@{step.get('epoch')}: {verdict}"
            if verdict == "deliver":
                delivered.append(step["event_id"])
        elif op == "confirm":
            sub = subs[step["sub"]]
            positions.confirm(sub["stream"], sub["type"], {k: step.get(k) for k in ("recovered", "offset", "epoch")})
        elif op == "recovery_failed":
            positions.set(step["stream"], step["type"], step)
        elif op == "reconnect":
            sent: Dict[str, Optional[StreamPosition]] = {s["id"]: positions.since(s["stream"], s["type"]) for s in scenario["subscriptions"]}
            assert sent == step["expect_since"], f"{where}: since sent on resume"
        elif op == "position":
            assert positions.get(step["stream"], step["type"]) == step["expect"], where
        else:
            pytest.fail(f"{where}: unknown op {op}")
    return delivered


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_transcript(scenario: Dict[str, Any]) -> None:
    assert play(scenario) == scenario["delivered"]


def test_transcript_exercises_every_step() -> None:
    ops = {step["op"] for s in SCENARIOS for step in s["steps"]}
    assert ops == {"subscribe", "event", "confirm", "recovery_failed", "reconnect", "position"}
    assert len(SCENARIOS) >= 6


def test_dedup_window_is_bounded() -> None:
    # Ids without offsets are judged by id alone: the oldest is forgotten once the window is full.
    positions = Positions(dedup_window=2)
    for eid in ("a", "b", "c"):
        assert positions.accept({"stream": "system", "type": "system_alert", "event_id": eid}) == "deliver"
    assert positions.accept({"stream": "system", "type": "system_alert", "event_id": "c"}) == "duplicate"
    assert positions.accept({"stream": "system", "type": "system_alert", "event_id": "a"}) == "deliver"
    with pytest.raises(ValueError):
        Positions(dedup_window=-1)
