"""Watchers against the real server (started by test/python-client.test.ts)."""
from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from typing import Any

import pytest
from conftest import URL, collect, mint, nothing_more, uniq

from escai_realtime.models import SUBSCRIPTION_TYPES

from escai_realtime import (
    Publisher,
    Subscription,
    SubscriptionRefused,
    TerminalError,
    Watcher,
    epistemic_update_event,
    watch,
    watch_sync,
)


def _activity(agent: str, i: int) -> dict[str, Any]:
    """A step of an agent, as the OTLP ingest would publish it."""
    return {
        "type": "agent_activity",
        "agent_id": agent,
        "data": {"span_id": f"{i + 1:016x}", "trace_id": "a" * 32, "kind": "tool", "name": "execute_tool search", "state": "ok", "started_at": "2026-12-01T10:00:00.000Z", "seq": i},
    }


def _publish_in_thread(agent: str, count: int, per_second: float, event_type: str = "epistemic_update") -> tuple[threading.Thread, Publisher]:
    pub = Publisher(URL, token=mint("py_producer", ["developer"]), flush_interval=0.05)

    def run() -> None:
        for i in range(count):
            if event_type == "agent_activity":
                pub.publish(_activity(agent, i))
            else:
                pub.epistemic_update(agent, {"confidence_level": 0.5, "seq": i})
            time.sleep(1 / per_second)
        pub.close(timeout=30)

    thread = threading.Thread(target=run, daemon=True)
    return thread, pub


@pytest.mark.parametrize("subscription_type", ["epistemic_updates", "agent_activity"])
def test_a_watcher_cut_while_a_producer_runs_gets_every_event_once_in_order(server: str, proxy_factory: Any, subscription_type: str) -> None:
    agent, total = uniq("py_cut_agent"), 300
    proxy = proxy_factory()
    event_type = SUBSCRIPTION_TYPES[subscription_type]

    async def main() -> None:
        w = watch(proxy.url, token=lambda: mint("py_watcher", ["researcher"]), subscriptions=[Subscription(subscription_type, agent_id=agent)], min_reconnect_delay=0.05, max_reconnect_delay=0.5)
        got: list[dict[str, Any]] = []

        async def consume() -> None:
            async for item in w:
                got.append(item)  # type: ignore[arg-type]
                if item["type"] == event_type and item["data"]["seq"] == total - 1:
                    return

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(w.wait_subscribed(), 10)
        producer, pub = _publish_in_thread(agent, total, per_second=150, event_type=event_type)
        producer.start()
        cuts = 0
        # Cut the watcher's connection three times while events flow (and once more right after a reconnect).
        for pause in (0.4, 0.5, 0.05, 0.5):
            await asyncio.sleep(pause)
            if proxy.cut():
                cuts += 1
        await asyncio.wait_for(task, 40)
        # Nothing after the last one either.
        extra = await nothing_more(w)
        await w.close()
        await asyncio.get_running_loop().run_in_executor(None, producer.join, 30)
        assert pub.stats["sent"] == total, pub.stats
        notices = [g for g in got if g["type"] == "recovery_failed"]
        assert notices == [], notices
        seqs = [g["data"]["seq"] for g in got]
        assert seqs == list(range(total)), f"missing {sorted(set(range(total)) - set(seqs))[:10]}, duplicated {[s for s in set(seqs) if seqs.count(s) > 1][:10]}"
        assert extra == []
        assert cuts >= 3 and w.connects >= 4, (cuts, w.connects, w.last_close)
        # Positions are per stream: an agent's activity has a stream of its own.
        stream = f"activity:{agent}" if event_type == "agent_activity" else f"agent:{agent}"
        assert w.position(stream, event_type) is not None

    asyncio.run(main())


def test_since_with_a_lost_position_yields_recovery_failed_then_live_events(server: str) -> None:
    agent = uniq("py_recovery_agent")
    pub = Publisher(server, token=mint("py_producer", ["developer"]))
    pub.publish_batch([epistemic_update_event(agent, {"seq": 0})])

    async def main() -> list[dict[str, Any]]:
        sub = Subscription("epistemic_updates", agent_id=agent, since={"offset": 5, "epoch": "not-the-epoch"})
        async with watch(server, token=mint("py_watcher", ["researcher"]), subscriptions=[sub]) as w:

            async def later() -> None:
                await w.wait_subscribed(10)
                await asyncio.get_running_loop().run_in_executor(None, pub.publish_batch, [epistemic_update_event(agent, {"seq": 1})])

            asyncio.ensure_future(later())
            return await collect(w, lambda got: any(g["type"] == "epistemic_update" for g in got), 15)

    got = asyncio.run(main())
    pub.close()
    assert got[0]["type"] == "recovery_failed", got
    assert got[0]["subscription"] == {"type": "epistemic_updates", "agent_id": agent, "filters": None}
    assert "history" in got[0]["reason"]
    assert [g["data"]["seq"] for g in got if g["type"] == "epistemic_update"] == [1]


def test_terminal_refusals_raise(server: str) -> None:
    async def bad_token() -> None:
        with pytest.raises(TerminalError) as refused:
            async for _ in watch(server, token="not.a.token", subscriptions=["system_alerts"]):
                pass
        assert refused.value.status == 401 and refused.value.close_code is None

    async def closed_by_admin() -> None:
        w = watch(server, token=mint("py_kicked", ["researcher"]), subscriptions=["system_alerts"])
        task = asyncio.ensure_future(collect(w, lambda got: False, 20))
        await asyncio.wait_for(w.wait_subscribed(), 10)
        admin = mint("py_admin", ["admin"])
        req = urllib.request.Request(f"{server}/ws/connections/{w.connection_id}", method="DELETE", headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(req, timeout=10) as res:
            assert res.status == 202
        with pytest.raises(TerminalError) as closed:
            await task
        assert closed.value.close_code == 4010
        assert w.connects == 1

    async def refused_subscription() -> None:
        with pytest.raises(SubscriptionRefused) as refused:
            async for _ in watch(server, token=mint("py_viewer", ["viewer"]), subscriptions=[Subscription("epistemic_updates", agent_id="secret_agent")]):
                pass
        assert refused.value.code == "AGENT_ACCESS_DENIED"
        assert refused.value.subscription["agent_id"] == "secret_agent"

    asyncio.run(bad_token())
    asyncio.run(closed_by_admin())
    asyncio.run(refused_subscription())


def test_the_callback_form_for_scripts(server: str) -> None:
    agent = uniq("py_callback_agent")
    got: list[dict[str, Any]] = []

    def on_event(item: Any) -> bool:
        got.append(item)
        return len(got) < 3

    thread = threading.Thread(
        target=watch_sync,
        args=(server, on_event),
        kwargs={"token": mint("py_watcher", ["researcher"]), "subscriptions": [Subscription("epistemic_updates", agent_id=agent, latest=True)]},
        daemon=True,
    )
    with Publisher(server, token=mint("py_producer", ["developer"])) as pub:
        pub.publish_batch([epistemic_update_event(agent, {"seq": 0})])
        thread.start()
        # latest=True: the newest event first, so the watcher is subscribed once it has it.
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        pub.publish_batch([epistemic_update_event(agent, {"seq": i}) for i in (1, 2, 3)])
    thread.join(15)
    assert not thread.is_alive()
    assert [g["data"]["seq"] for g in got] == [0, 1, 2]

    # stop= ends a quiet watch.
    stop2 = threading.Event()
    quiet = threading.Thread(target=watch_sync, args=(server, lambda item: True), kwargs={"token": mint("py_watcher", ["researcher"]), "subscriptions": ["system_alerts"], "stop": stop2}, daemon=True)
    quiet.start()
    time.sleep(0.5)
    assert quiet.is_alive(), "a quiet watch runs until stop is set (it did not end by itself, e.g. on an error)"
    stop2.set()
    quiet.join(5)
    assert not quiet.is_alive()


def test_array_frames_are_handled_element_by_element() -> None:
    class Socket:
        sent: list[str] = []

        async def send(self, text: str) -> None:
            self.sent.append(text)

    async def main() -> list[Any]:
        w = Watcher("ws://127.0.0.1:1", token="t", subscriptions=[Subscription("epistemic_updates", agent_id="a1")])
        frame = json.dumps(
            [
                {"type": "epistemic_update", "event_id": "e1", "agent_id": "a1", "data": {"seq": 1}, "timestamp": "t", "offset": 1, "epoch": "E"},
                {"type": "ping", "timestamp": "t"},
                {"type": "epistemic_update", "event_id": "e2", "agent_id": "a1", "data": {"seq": 2}, "timestamp": "t", "offset": 2, "epoch": "E"},
                {"type": "epistemic_update", "event_id": "e1", "agent_id": "a1", "data": {"seq": 1}, "timestamp": "t", "offset": 1, "epoch": "E"},
            ]
        )
        sock = Socket()
        items = await w._frame(sock, frame)
        assert sock.sent == ['{"type": "pong"}']
        return items

    items = asyncio.run(main())
    assert [i["data"]["seq"] for i in items] == [1, 2]


def test_token_refresh_keeps_the_connection(server: str) -> None:
    # The server warns 4 s before exp and closes 1 s after it without a refresh; tokens live 7 s.
    agent = uniq("py_refresh_agent")
    minted: list[float] = []

    def token() -> str:
        minted.append(time.monotonic())
        return mint("py_refresher", ["researcher"], ttl=7)

    async def main() -> None:
        w = watch(server, token=token, subscriptions=[Subscription("epistemic_updates", agent_id=agent)])
        producer, pub = _publish_in_thread(agent, 24, per_second=2)  # 12 s of events
        task = asyncio.ensure_future(collect(w, lambda got: len(got) == 24, 40))
        await asyncio.wait_for(w.wait_subscribed(), 10)
        producer.start()
        got = await task
        await w.close()
        await asyncio.get_running_loop().run_in_executor(None, producer.join, 30)
        assert [g["data"]["seq"] for g in got] == list(range(24))
        assert w.refreshes >= 2, (w.refreshes, len(minted))
        assert w.connects == 1, (w.connects, w.last_close)

    asyncio.run(main())


def test_token_refresh_not_possible_with_a_fixed_token_ends_with_4001(server: str) -> None:
    async def main() -> None:
        w = watch(server, token=mint("py_fixed", ["researcher"], ttl=5), subscriptions=["system_alerts"])
        with pytest.raises(TerminalError) as closed:
            await collect(w, lambda got: False, 20)
        assert closed.value.close_code == 4001

    asyncio.run(main())
