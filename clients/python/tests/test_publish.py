"""Producers against the real server (started by test/python-client.test.ts)."""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from conftest import URL, collect, history, mint, nothing_more, signal, uniq

from escai_realtime import (
    AsyncPublisher,
    Publisher,
    PublishError,
    QueueFull,
    Subscription,
    ValidationError,
    epistemic_update_event,
    watch,
)

AGENT_TYPES = ("epistemic_updates", "pattern_alerts", "prediction_updates", "agent_status")


def _state(confidence: float, **extra: Any) -> dict[str, Any]:
    return {
        "belief_states": [{"content": "the API is reachable", "belief_type": "factual", "confidence": confidence, "evidence": ["200 OK"]}],
        "knowledge_state": {"facts": ["the API answers"], "confidence": confidence},
        "goal_states": [{"description": "answer the ticket", "status": "active", "priority": 5}],
        "confidence_level": confidence,
        "uncertainty_score": round(1 - confidence, 3),
        **extra,
    }


def _check_all_six(got: list[dict[str, Any]], agent: str) -> None:
    by_type = {e["type"]: e for e in got}
    assert set(by_type) == {"epistemic_update", "pattern_alert", "prediction_update", "agent_status_change", "system_alert", "user_notification"}, got
    for e in got:
        assert isinstance(e["event_id"], str) and isinstance(e["offset"], int) and isinstance(e["epoch"], str), e
    assert by_type["epistemic_update"]["agent_id"] == agent
    assert by_type["epistemic_update"]["data"]["confidence_level"] == 0.9
    assert by_type["epistemic_update"]["data"]["belief_states"][0]["belief_type"] == "factual"
    assert by_type["pattern_alert"]["severity"] == "warning"
    assert by_type["pattern_alert"]["data"]["pattern_type"] == "feedback_loop"
    assert by_type["prediction_update"]["data"]["risk_level"] == "high"
    assert by_type["agent_status_change"]["status"] == "running"
    assert by_type["agent_status_change"]["metadata"] == {"step": 1}
    assert by_type["system_alert"]["alert_type"] == "maintenance" and by_type["system_alert"]["severity"] == "critical"
    assert by_type["user_notification"]["notification_type"] == "report_ready"
    assert by_type["user_notification"]["data"] == {"url": "/r/1"}


async def _watch_six(agent: str, user: str, publish: Any) -> list[dict[str, Any]]:
    subs = [Subscription(t, agent_id=agent) for t in AGENT_TYPES] + [Subscription("system_alerts")]
    async with watch(URL, token=mint(user, ["researcher"]), subscriptions=subs) as w:
        task = asyncio.ensure_future(collect(w, lambda got: len(got) == 6, 25))
        await asyncio.wait_for(w.wait_subscribed(), 10)
        await publish()
        got = await task
        # Nothing more (no duplicate) arrives.
        assert await nothing_more(w) == []
    return got


def test_sync_publisher_every_event_type_is_delivered(server: str) -> None:
    agent, user = uniq("py_sync_agent"), uniq("py_sync_watcher")

    async def publish() -> None:
        pub = Publisher(server, token=mint("py_producer", ["developer"]))
        pub.epistemic_update(agent, _state(0.9))
        pub.pattern_alert(agent, {"pattern_name": "retry loop", "pattern_type": "feedback_loop", "frequency": 3}, severity="warning")
        pub.prediction_update(agent, {"prediction_type": "success", "confidence": 0.4, "risk_level": "high"})
        pub.agent_status(agent, "running", {"step": 1})
        pub.system_alert("maintenance", "restart at 02:00", severity="critical")
        pub.notify_user(user, "report_ready", "your report is ready", {"url": "/r/1"})
        await asyncio.get_running_loop().run_in_executor(None, pub.close)
        assert pub.stats["sent"] == 6 and pub.stats["failed"] == 0, pub.stats

    got = asyncio.run(_watch_six(agent, user, publish))
    _check_all_six(got, agent)


def test_async_publisher_every_event_type_is_delivered(server: str) -> None:
    agent, user = uniq("py_async_agent"), uniq("py_async_watcher")

    async def publish() -> None:
        async with AsyncPublisher(server, token=lambda: mint("py_producer", ["developer"])) as pub:
            await pub.epistemic_update(agent, _state(0.9))
            await pub.pattern_alert(agent, {"pattern_name": "retry loop", "pattern_type": "feedback_loop"}, severity="warning")
            await pub.prediction_update(agent, {"prediction_type": "success", "confidence": 0.4, "risk_level": "high"})
            await pub.agent_status(agent, "running", {"step": 1})
            await pub.system_alert("maintenance", "restart at 02:00", severity="critical")
            await pub.notify_user(user, "report_ready", "your report is ready", {"url": "/r/1"})
            await pub.flush()
            assert pub.stats["sent"] == 6 and pub.stats["batches"] >= 1, pub.stats

    got = asyncio.run(_watch_six(agent, user, publish))
    _check_all_six(got, agent)


def test_a_batch_with_one_bad_event_is_refused_whole_naming_the_field(server: str) -> None:
    producer = mint("py_producer", ["developer"])
    reader = mint("py_reader", ["researcher"])
    agent = uniq("py_bad_batch")
    with Publisher(server, token=producer) as pub:
        good = [epistemic_update_event(agent, {"confidence_level": 0.5, "seq": i}) for i in range(3)]
        bad = epistemic_update_event(agent, {"confidence_level": 1.5, "seq": 99})
        with pytest.raises(ValidationError) as refused:
            pub.publish_batch([good[0], bad, good[1]])
        assert refused.value.field == "events[1].data.confidence_level", refused.value
        assert refused.value.index == 1 and refused.value.event["data"]["seq"] == 99
        assert refused.value.status == 400
        # Refused whole: nothing of it was published.
        assert [e["data"]["seq"] for e in history(agent, reader)] == []

        # A client-side check names the field at the call site, before anything is queued.
        with pytest.raises(ValidationError) as local:
            pub.epistemic_update("not a valid id!", {"confidence_level": 0.5})
        assert local.value.field == "event.agent_id"
        for dots in (".", ".."):  # the server refuses these too: URLs resolve them away
            with pytest.raises(ValidationError) as only_dots:
                pub.epistemic_update(dots, {"confidence_level": 0.5})
            assert only_dots.value.field == "event.agent_id" and "dots" in only_dots.value.message
        with pytest.raises(ValidationError) as newline:  # the whole id must match, a trailing newline too
            pub.epistemic_update(agent + "\n", {"confidence_level": 0.5})
        assert newline.value.field == "event.agent_id"
        pub.epistemic_update(agent + ".v1", {"confidence_level": 0.5})  # dots inside an id are fine
        with pytest.raises(ValidationError) as unserialisable:
            pub.epistemic_update(agent, {"confidence_level": 0.5, "when": object()})  # type: ignore[dict-item]
        assert "JSON" in unserialisable.value.message

        # Queued: the refused event is reported (on_error, and raised by flush), the others are sent again without it.
        errors: list[BaseException] = []
        pub2 = Publisher(server, token=producer, on_error=errors.append, flush_interval=5)
        pub2.publish(good[0])
        pub2.publish(bad)
        pub2.publish(good[1])
        with pytest.raises(ValidationError) as flushed:
            pub2.flush(timeout=15)
        assert flushed.value.field == "events[1].data.confidence_level"
        assert flushed.value.event["data"]["seq"] == 99
        assert errors and errors[0] is flushed.value
        pub2.close()
        assert [e["data"]["seq"] for e in history(agent, reader)] == [0, 1]


def test_an_answer_lost_after_the_server_accepted_is_retried_without_duplicates(server: str, proxy_factory: Any) -> None:
    # The proxy forwards the first two requests and throws the server's answers away (the
    # connection dies after the server accepted): the publisher cannot know, retries with the
    # same idempotency keys, and the server answers the repeats as duplicates.
    proxy = proxy_factory(drop_responses=2)
    agent = uniq("py_lost_answer")
    retries: list[Any] = []
    pub = Publisher(proxy.url, token=mint("py_producer", ["developer"]), on_retry=lambda a, d: retries.append(a.code), min_retry_delay=0.05)
    for i in range(20):
        pub.epistemic_update(agent, {"confidence_level": 0.5, "seq": i})
    pub.close(timeout=30)
    assert proxy.dropped == 2
    assert retries == ["NETWORK", "NETWORK"], retries
    assert pub.stats["sent"] == 20 and pub.stats["duplicates"] == 20, pub.stats
    events = history(agent, mint("py_reader", ["researcher"]))
    assert [e["data"]["seq"] for e in events] == list(range(20))


def test_engine_down_503_is_retried_until_it_is_back_and_delivered_once(server: str) -> None:
    if os.environ.get("ESCAI_EXPECT_503") != "1":
        pytest.skip("needs the Redis-down server of test/python-client.test.ts")
    agent = uniq("py_engine_down")
    seen: list[tuple[Any, Any, float]] = []

    def on_retry(answer: Any, delay: float) -> None:
        seen.append((answer.status, answer.code, delay))
        if len(seen) == 1:
            signal("retrying")  # the Node side starts Redis now

    pub = Publisher(server, token=mint("py_producer", ["developer"]), on_retry=on_retry, max_retry_delay=1.0, retry_timeout=60)
    for i in range(10):
        pub.epistemic_update(agent, {"confidence_level": 0.5, "seq": i})
    pub.flush(timeout=60)
    pub.close()
    assert seen and seen[0][:2] == (503, "ENGINE_UNAVAILABLE"), seen
    assert pub.stats["sent"] == 10 and pub.stats["retries"] >= 1, pub.stats
    events = history(agent, mint("py_reader", ["researcher"]))
    assert [e["data"]["seq"] for e in events] == list(range(10))


def test_a_429_is_never_retried_before_its_retry_after(server: str) -> None:
    if os.environ.get("ESCAI_EXPECT_429") != "1":
        pytest.skip("needs the rate-limited server of test/python-client.test.ts (restRateLimit 3/min)")
    producer = mint("py_producer", ["developer"])
    agent = uniq("py_rate_limited")
    retries: list[Any] = []
    pub = Publisher(server, token=producer, on_retry=lambda a, d: retries.append((a.code, d)), retry_timeout=5)
    for i in range(3):  # the address's budget: 3 requests a minute
        pub.publish_batch([epistemic_update_event(agent, {"seq": i})])
    started = time.monotonic()
    with pytest.raises(PublishError) as limited:
        pub.publish_batch([epistemic_update_event(agent, {"seq": 3})])
    # Retry-After (up to 60 s) is past retry_timeout: it fails at once instead of retrying sooner.
    assert limited.value.code == "RATE_LIMITED" and limited.value.status == 429, limited.value
    assert "retry_timeout" in limited.value.message
    assert retries == [] and time.monotonic() - started < 3
    assert limited.value.events[0]["data"]["seq"] == 3
    pub.close()


def test_a_full_queue_never_blocks_the_agent_longer_than_max_block() -> None:
    # Nothing listens on this port: the sender keeps retrying its one batch, the queue fills.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    pub = Publisher(dead, token="t", batch_size=1, max_queue=5, max_block=0.05, retry_timeout=600)
    pub.publish(epistemic_update_event("a", {"seq": 0}))
    time.sleep(0.3)  # the sender took the first event and is retrying it
    for i in range(5):
        pub.publish(epistemic_update_event("a", {"seq": i + 1}))
    started = time.monotonic()
    with pytest.raises(QueueFull):
        pub.publish(epistemic_update_event("a", {"seq": 6}))
    assert time.monotonic() - started < 0.5
    with pytest.raises(PublishError) as pending:
        pub.close(timeout=0.3)
    assert pending.value.code == "TIMEOUT"

    errors: list[BaseException] = []
    dropping = Publisher(dead, token="t", batch_size=1, max_queue=1, max_block=0.01, on_full="drop", on_error=errors.append, retry_timeout=600)
    dropping.publish(epistemic_update_event("a", {"seq": 0}))
    time.sleep(0.3)
    dropping.publish(epistemic_update_event("a", {"seq": 1}))
    started = time.monotonic()
    dropping.publish(epistemic_update_event("a", {"seq": 2}))  # dropped, reported, not raised
    assert time.monotonic() - started < 0.5
    assert dropping.stats["dropped"] == 1
    assert isinstance(errors[0], QueueFull) and errors[0].event["data"]["seq"] == 2
    with pytest.raises(PublishError):
        dropping.close(timeout=0.2)

    async def asynchronous() -> None:
        apub = AsyncPublisher(dead, token="t", batch_size=1, max_queue=2, max_block=0.05, retry_timeout=600)
        await apub.publish(epistemic_update_event("a", {"seq": 0}))
        await asyncio.sleep(0.3)  # the sender took it and is retrying
        await apub.publish(epistemic_update_event("a", {"seq": 1}))
        await apub.publish(epistemic_update_event("a", {"seq": 2}))
        started = time.monotonic()
        with pytest.raises(QueueFull):
            await apub.publish(epistemic_update_event("a", {"seq": 3}))
        assert time.monotonic() - started < 0.5
        with pytest.raises(PublishError) as pending:
            await apub.close(timeout=0.2)
        assert pending.value.code == "TIMEOUT"

    asyncio.run(asynchronous())


def test_pending_events_are_flushed_at_interpreter_exit(server: str, tmp_path: Any) -> None:
    import subprocess
    import sys

    agent = uniq("py_atexit")
    script = tmp_path / "agent.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))!r})\n"
        "from escai_realtime import Publisher\n"
        f"pub = Publisher({server!r}, token={mint('py_producer', ['developer'])!r}, flush_interval=60)\n"
        f"for i in range(5): pub.epistemic_update({agent!r}, {{'seq': i}})\n"
        "# no close(): atexit sends them\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=30)
    assert [e["data"]["seq"] for e in history(agent, mint("py_reader", ["researcher"]))] == list(range(5))


# ---- issue 20: stats, an empty flush, the deadline after a byte-size split ----


def test_a_refused_batch_counts_as_failed_only_the_events_that_were_refused(server: str) -> None:
    producer = mint("py_producer", ["developer"])
    reader = mint("py_reader", ["researcher"])
    agent = uniq("py_failed_count")

    def events() -> list[Any]:
        # The server names the first bad event only: two refusals, each resending the rest.
        return [
            epistemic_update_event(agent, {"confidence_level": 0.5, "seq": 0}),
            epistemic_update_event(agent, {"confidence_level": 1.5, "seq": 98}),
            epistemic_update_event(agent, {"confidence_level": 0.5, "seq": 1}),
            epistemic_update_event(agent, {"confidence_level": -1, "seq": 99}),
        ]

    errors: list[BaseException] = []
    pub = Publisher(server, token=producer, on_error=errors.append, flush_interval=60)
    for ev in events():
        pub.publish(ev)
    with pytest.raises(ValidationError):
        pub.flush(timeout=15)
    pub.close()
    assert [e.event["data"]["seq"] for e in errors if isinstance(e, ValidationError)] == [98, 99], errors
    assert [e["data"]["seq"] for e in history(agent, reader)] == [0, 1]
    assert (pub.stats["sent"], pub.stats["failed"], pub.stats["batches"]) == (2, 2, 1), pub.stats

    agent_async = uniq("py_failed_count_async")

    async def asynchronous() -> dict[str, int]:
        apub = AsyncPublisher(server, token=producer, on_error=lambda e: None, flush_interval=60)
        for ev in events():
            await apub.publish({**ev, "agent_id": agent_async})
        with pytest.raises(ValidationError):
            await apub.flush(timeout=15)
        await apub.close()
        return apub.stats

    stats = asyncio.run(asynchronous())
    assert [e["data"]["seq"] for e in history(agent_async, reader)] == [0, 1]
    assert (stats["sent"], stats["failed"], stats["batches"]) == (2, 2, 1), stats


def test_an_empty_flush_leaves_the_next_batch_to_the_batching_rules(server: str) -> None:
    agent = uniq("py_empty_flush")
    sizes: list[int] = []
    # Nothing pending: flush returns at once and leaves no state behind.
    pub = Publisher(server, token=mint("py_producer", ["developer"]), batch_size=2, flush_interval=3600)
    attempt = pub._attempt

    def counted(items: Any) -> Any:  # the size of each request the server gets
        sizes.append(len(items))
        return attempt(items)

    pub._attempt = counted  # type: ignore[method-assign]
    pub.flush(timeout=5)
    assert not pub._urgent.is_set()
    # The next batch waits for its size (2) or its delay (an hour): not sent on its first event.
    pub.epistemic_update(agent, {"seq": 0})
    while not pub._queue.empty():  # the sender has taken it and gathers more
        time.sleep(0.005)
    pub.epistemic_update(agent, {"seq": 1})
    pub.flush(timeout=15)
    pub.close()
    assert sizes == [2], sizes
    assert (pub.stats["sent"], pub.stats["batches"]) == (2, 1), pub.stats


class _Clock:
    """A monotonic clock a test moves: the publisher's batching deadlines read it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _split_setup(agent: str) -> tuple[list[dict[str, Any]], int]:
    """Four events of one size, and a max_batch_bytes that holds two of them and not three."""
    import json

    evs = [dict(epistemic_update_event(agent, {"seq": i}, idempotency_key=f"{agent}-key-{i}")) for i in range(4)]
    sizes = {len(json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()) for e in evs}
    assert len(sizes) == 1, sizes
    one = sizes.pop()
    return evs, 2 + 2 * one + 1  # "[a,b]"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_after_a_byte_size_split_the_rest_gets_a_fresh_deadline(server: str, kind: str) -> None:
    # [e0, e1, e2] queued, max_batch_bytes holds two: [e0, e1] leaves, e2 starts the next batch.
    # Sending [e0, e1] takes longer (on the injected clock) than flush_interval: e2's batch must
    # still wait flush_interval for more events (e3), not leave at once on the first batch's deadline.
    agent = uniq(f"py_split_deadline_{kind}")
    evs, max_bytes = _split_setup(agent)
    clock = _Clock()
    sent: list[list[int]] = []
    opts: dict[str, Any] = {"max_batch_bytes": max_bytes, "flush_interval": 10.0, "batch_size": 100}
    token = mint("py_producer", ["developer"])

    def wrap(pub: Any) -> None:
        pub._clock = clock
        attempt = pub._attempt

        def timed(items: Any) -> Any:
            sent.append([it.event["data"]["seq"] for it in items])
            clock.now += 11.0  # past the first batch's deadline
            return attempt(items)

        pub._attempt = timed

    if kind == "sync":
        pub = Publisher(server, token=token, **opts)
        wrap(pub)
        for ev in evs[:3]:
            pub.publish(ev)
        while pub.stats["batches"] < 1:  # [e0, e1] accepted; e2 waits in the sender
            time.sleep(0.005)
        pub.publish(evs[3])
        pub.flush(timeout=15)
        pub.close()
        stats = pub.stats
    else:

        async def asynchronous() -> dict[str, int]:
            apub = AsyncPublisher(server, token=token, **opts)
            wrap(apub)
            for ev in evs[:3]:
                await apub.publish(ev)
            while apub.stats["batches"] < 1:
                await asyncio.sleep(0.005)
            await apub.publish(evs[3])
            await apub.flush(timeout=15)
            await apub.close()
            return apub.stats

        stats = asyncio.run(asynchronous())
    assert sent == [[0, 1], [2, 3]], sent
    assert (stats["sent"], stats["batches"]) == (4, 2), stats
    assert [e["data"]["seq"] for e in history(agent, mint("py_reader", ["researcher"]))] == [0, 1, 2, 3]


def test_a_queued_batch_split_by_a_413_settles_each_half_on_its_own(server: str) -> None:
    # 24 events of ~50 KB: over the server's 1 MiB body limit (413), so the batch is split in
    # halves of 12. The bad event (seq 17) is in the second half: that half is refused and sent
    # again without it; the first half, already delivered, is not sent again (no duplicates).
    producer = mint("py_producer", ["developer"])
    reader = mint("py_reader", ["researcher"])
    pad = "x" * 50_000

    def events(agent: str) -> list[Any]:
        return [epistemic_update_event(agent, {"confidence_level": 1.5 if i == 17 else 0.5, "seq": i, "pad": pad}) for i in range(24)]

    opts: dict[str, Any] = {"max_batch_bytes": 4 * 1024 * 1024, "flush_interval": 60}
    agent = uniq("py_split_413")
    errors: list[BaseException] = []
    pub = Publisher(server, token=producer, on_error=errors.append, **opts)
    for ev in events(agent):
        pub.publish(ev)
    with pytest.raises(ValidationError) as refused:
        pub.flush(timeout=30)
    pub.close()
    assert refused.value.event["data"]["seq"] == 17, refused.value
    assert len(errors) == 1, errors
    assert [e["data"]["seq"] for e in history(agent, reader)] == [i for i in range(24) if i != 17]
    assert (pub.stats["sent"], pub.stats["duplicates"], pub.stats["failed"]) == (23, 0, 1), pub.stats

    agent_async = uniq("py_split_413_async")

    async def asynchronous() -> tuple[dict[str, int], list[BaseException]]:
        errs: list[BaseException] = []
        apub = AsyncPublisher(server, token=producer, on_error=errs.append, **opts)
        for ev in events(agent_async):
            await apub.publish(ev)
        with pytest.raises(ValidationError):
            await apub.flush(timeout=30)
        await apub.close()
        return apub.stats, errs

    stats, errs = asyncio.run(asynchronous())
    assert [getattr(e, "event", {})["data"]["seq"] for e in errs] == [17], errs
    assert [e["data"]["seq"] for e in history(agent_async, reader)] == [i for i in range(24) if i != 17]
    assert (stats["sent"], stats["duplicates"], stats["failed"]) == (23, 0, 1), stats
