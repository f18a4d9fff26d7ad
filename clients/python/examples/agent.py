"""A small plain-Python agent, instrumented with the ESCAI Realtime publisher.

The agent works through a list of support tickets. For each it forms beliefs
(with a confidence), tries a flaky tool, retries, and either answers or gives
up. The publisher streams what it "thinks" to the server: its epistemic state
after every step, its status, a pattern alert when it falls into a retry loop,
and a prediction of whether it will finish.

Run (next to `npm start`, from the repository root):

    ESCAI_TOKEN=$(node dist/cli/main.js token --sub ticket-bot --role developer) \\
        python3 clients/python/examples/agent.py

Environment: ESCAI_URL (default http://127.0.0.1:8000), ESCAI_TOKEN (a token
with events:publish), ESCAI_AGENT (default ticket-bot), ESCAI_STEPS (default 40).
"""
from __future__ import annotations

import io
import os
import random
import sys
import time
from pathlib import Path

try:
    import escai_realtime  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from escai_realtime import EpistemicState, Publisher
except ImportError as err:  # a missing dependency, named in one line
    sys.exit(f"agent.py: {err}")

# A line as soon as it is printed, also into a pipe or a file (`| grep`, `| tee`), not a block later.
if isinstance(sys.stdout, io.TextIOWrapper):
    sys.stdout.reconfigure(line_buffering=True)

URL = os.environ.get("ESCAI_URL", "http://127.0.0.1:8000")
TOKEN = os.environ.get("ESCAI_TOKEN") or sys.exit("set ESCAI_TOKEN (e.g. $(node dist/cli/main.js token --sub ticket-bot --role developer))")
AGENT = os.environ.get("ESCAI_AGENT", "ticket-bot")
STEPS = int(os.environ.get("ESCAI_STEPS", "40"))

TICKETS = ["refund for order 1042", "password reset loop", "invoice in the wrong currency", "API returns 502", "export is empty"]


def think(ticket: str, confidence: float, attempts: int, done: bool) -> EpistemicState:
    """The agent's epistemic state, in the ESCAI model."""
    return {
        "belief_states": [
            {"content": f"the ticket is about: {ticket}", "belief_type": "factual", "confidence": 0.95},
            {"content": "the billing tool will answer", "belief_type": "predictive", "confidence": round(max(0.05, 1 - 0.25 * attempts), 2)},
        ],
        "knowledge_state": {"facts": [f"attempts so far: {attempts}"], "confidence": round(confidence, 2)},
        "goal_states": [{"description": f"resolve '{ticket}'", "status": "completed" if done else "active", "priority": 7}],
        "confidence_level": round(confidence, 3),
        "uncertainty_score": round(1 - confidence, 3),
    }


def main() -> None:
    # Events are queued and sent in the background, in batches: the loop never waits on the network.
    with Publisher(URL, token=TOKEN) as pub:
        pub.agent_status(AGENT, "running", {"tickets": len(TICKETS)})
        step = 0
        for ticket in TICKETS:
            confidence, attempts = 0.5, 0
            while step < STEPS:
                step += 1
                tool_ok = random.random() < 0.55
                attempts += 1
                confidence = min(0.98, confidence + 0.2) if tool_ok else max(0.05, confidence - 0.15)
                pub.epistemic_update(AGENT, think(ticket, confidence, attempts, tool_ok))
                print(f"step {step:3}: {ticket!r} attempt {attempts}: {'ok' if tool_ok else 'tool failed'}; confidence {confidence:.2f}")
                if attempts == 3 and not tool_ok:
                    pub.pattern_alert(
                        AGENT,
                        {"pattern_name": "retry loop", "pattern_type": "feedback_loop", "frequency": attempts, "description": f"retrying the billing tool for {ticket!r}"},
                        severity="warning",
                    )
                    pub.prediction_update(
                        AGENT,
                        {"prediction_type": "task_success", "predicted_value": False, "confidence": 0.7, "risk_level": "high", "recommended_actions": ["escalate to a human"]},
                    )
                if tool_ok or attempts >= 5:
                    break
                time.sleep(0.4)
            time.sleep(0.6)
        pub.agent_status(AGENT, "idle", {"steps": step})
    # Leaving the `with` block flushed everything (and raised if the server refused anything).
    print("done: every event was accepted")


if __name__ == "__main__":
    main()
