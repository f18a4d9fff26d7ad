"""Prints what an agent thinks, live: its confidence, beliefs, alerts and predictions.

Run (next to `npm start`, from the repository root), then start examples/agent.py:

    ESCAI_TOKEN=$(node dist/cli/main.js token --sub me --role researcher) \\
        python3 clients/python/examples/watch.py

Environment: ESCAI_URL (default ws://127.0.0.1:8000), ESCAI_TOKEN (a token with
websocket:subscribe and monitor permission on the agent), ESCAI_AGENT (default ticket-bot).
Ctrl-C to stop. Kill and restart the server meanwhile: the watcher reconnects
and catches up with what it missed.
"""
from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

try:
    import escai_realtime  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from escai_realtime import Subscription, TerminalError, watch
except ImportError as err:  # a missing dependency, named in one line
    sys.exit(f"watch.py: {err}")

# A line as soon as it is printed, also into a pipe or a file (`| grep`, `| tee`), not a block later.
if isinstance(sys.stdout, io.TextIOWrapper):
    sys.stdout.reconfigure(line_buffering=True)

URL = os.environ.get("ESCAI_URL", "ws://127.0.0.1:8000")
TOKEN = os.environ.get("ESCAI_TOKEN") or sys.exit("set ESCAI_TOKEN (e.g. $(node dist/cli/main.js token --sub me --role researcher))")
AGENT = os.environ.get("ESCAI_AGENT", "ticket-bot")
HINT = (
    "" if "ESCAI_AGENT" in os.environ
    else "; ticket-bot publishes while examples/agent.py runs: start it in another terminal, or set ESCAI_AGENT=support-bot to watch a demo agent"
)


async def main() -> None:
    subscriptions = [
        Subscription("epistemic_updates", agent_id=AGENT, latest=True),  # start with what it thinks now
        Subscription("pattern_alerts", agent_id=AGENT),
        Subscription("prediction_updates", agent_id=AGENT),
        Subscription("agent_status", agent_id=AGENT),
    ]
    print(f"watching {AGENT} at {URL} (Ctrl-C to stop){HINT}")
    async for ev in watch(URL, token=TOKEN, subscriptions=subscriptions):
        kind = ev["type"]
        if kind == "epistemic_update":
            state = ev["data"]
            beliefs = "; ".join(f"{b.get('content')} ({b.get('confidence')})" for b in state.get("belief_states", []))
            print(f"#{ev['offset']:<5} thinks  confidence={state.get('confidence_level')} uncertainty={state.get('uncertainty_score')}  {beliefs}")
        elif kind == "pattern_alert":
            print(f"#{ev['offset']:<5} ALERT   [{ev['severity']}] {ev['data'].get('pattern_name')}: {ev['data'].get('description', '')}")
        elif kind == "prediction_update":
            p = ev["data"]
            print(f"#{ev['offset']:<5} PREDICT {p.get('prediction_type')}={p.get('predicted_value')} risk={p.get('risk_level')} -> {p.get('recommended_actions')}")
        elif kind == "agent_status_change":
            print(f"#{ev['offset']:<5} STATUS  {ev['status']} {ev.get('metadata') or ''}")
        elif kind == "recovery_failed":
            print(f"(missed events that cannot be replayed on {ev['subscription']['type']}: {ev['reason']})")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except TerminalError as err:
        sys.exit(f"stopped: {err}")
