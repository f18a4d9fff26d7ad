"""When the server cannot be reached, the client says why, naming the URL.

No server needed: a port nothing listens on (connection refused), a local
HTTP server answering 502, and the causes the network layer raises (DNS,
TLS, timeouts) classified one by one. The publisher logs the failure once
when it starts (not on every retry) and names it in flush()'s error; the
watcher logs its first reconnect attempt and then every LOG_EVERY-th.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Iterator

import pytest

from escai_realtime import AsyncPublisher, Publisher, PublishError, epistemic_update_event, watch
from escai_realtime._http import network_cause
from escai_realtime.watcher import LOG_EVERY


@pytest.fixture
def dead_url() -> Iterator[str]:
    # Bound but never listening, and held for the whole test: connecting is refused, and no other
    # process of a busy suite can be given the port meanwhile (a closed one may be handed out again).
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        s.close()


@pytest.fixture
def bad_gateway() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def failing_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "is failing" in r.getMessage()]


def test_publisher_names_connection_refused_and_the_url_logged_once(dead_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="escai_realtime")
    pub = Publisher(dead_url, token="t", min_retry_delay=0.01, max_retry_delay=0.05, retry_timeout=600)
    pub.publish(epistemic_update_event("a", {"confidence_level": 0.5}))
    with pytest.raises(PublishError) as pending:
        pub.flush(timeout=1.0)
    assert pending.value.code == "TIMEOUT"
    assert f"cannot reach {dead_url}/api/v1/events: connection refused" in pending.value.message
    assert pub.stats["retries"] >= 3, "it kept retrying"
    assert len(failing_warnings(caplog)) == 1, "logged when it started failing, not on every retry"
    assert dead_url in failing_warnings(caplog)[0]
    with pytest.raises(PublishError):
        pub.close(timeout=0.1)


def test_async_publisher_names_the_cause_too(dead_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="escai_realtime")

    async def main() -> None:
        pub = AsyncPublisher(dead_url, token="t", min_retry_delay=0.01, max_retry_delay=0.05, retry_timeout=600)
        await pub.publish(epistemic_update_event("a", {"confidence_level": 0.5}))
        with pytest.raises(PublishError) as pending:
            await pub.flush(timeout=1.0)
        assert "connection refused" in pending.value.message and dead_url in pending.value.message
        with pytest.raises(PublishError):
            await pub.close(timeout=0.1)

    asyncio.run(main())
    assert len(failing_warnings(caplog)) == 1


def test_an_http_status_is_named_with_the_url(bad_gateway: str) -> None:
    pub = Publisher(bad_gateway, token="t", min_retry_delay=0.01, max_retry_delay=0.05, retry_timeout=600)
    pub.publish(epistemic_update_event("a", {"confidence_level": 0.5}))
    with pytest.raises(PublishError) as pending:
        pub.flush(timeout=1.0)
    assert f"{bad_gateway}/api/v1/events answered HTTP 502" in pending.value.message
    with pytest.raises(PublishError):
        pub.close(timeout=0.1)


def test_network_causes_in_words() -> None:
    assert network_cause(ConnectionRefusedError(111, "Connection refused")).startswith("connection refused")
    assert network_cause(socket.gaierror(-2, "Name or service not known")) == "DNS lookup failed (Name or service not known)"
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cert.verify_message = "self-signed certificate"
    assert network_cause(cert) == "TLS certificate not accepted (self-signed certificate)"
    assert network_cause(socket.timeout("timed out")) == "timed out waiting for the server"
    assert network_cause(ConnectionResetError(104, "reset")).startswith("connection reset")

    class Wrapped(OSError):  # urllib.error.URLError wraps the cause in .reason
        def __init__(self, reason: BaseException) -> None:
            super().__init__(str(reason))
            self.reason = reason

    assert network_cause(Wrapped(socket.gaierror(-3, "Temporary failure in name resolution"))).startswith("DNS lookup failed")


def test_the_watcher_logs_its_first_reconnect_and_then_every_nth(dead_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="escai_realtime")

    async def main() -> None:
        watcher = watch(dead_url.replace("http://", "ws://"), token="t", min_reconnect_delay=0.001, max_reconnect_delay=0.002)

        async def consume() -> None:
            async for _ in watcher:
                pass

        task = asyncio.ensure_future(consume())
        for _ in range(400):
            attempts = [r for r in caplog.records if "reconnecting (attempt" in r.getMessage()]
            if len(attempts) > LOG_EVERY:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            # Bounded: a watcher that did not stop when cancelled fails here, it does not hang the suite.
            await asyncio.wait_for(task, 10)
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    attempts = [r for r in caplog.records if "reconnecting (attempt" in r.getMessage()]
    assert len(attempts) > LOG_EVERY, f"only {len(attempts)} attempts seen"
    loud = [r.getMessage() for r in attempts if r.levelno == logging.WARNING]
    assert "cannot connect: connection refused" in loud[0] and "(attempt 1)" in loud[0]
    assert f"(attempt {LOG_EVERY})" in loud[1]
    assert all(r.levelno == logging.DEBUG for r in attempts[1 : LOG_EVERY - 1])


@pytest.mark.parametrize("example", ["watch.py", "agent.py"])
def test_an_example_without_websockets_stops_with_one_line_naming_it(example: str, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    # An interpreter where `import websockets` fails, as on a python3 without the package.
    fake = tmp_path / "websockets"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named websockets')\n")
    script = Path(__file__).resolve().parent.parent / "examples" / example
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "ESCAI_TOKEN": "t"}
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "'websockets'" in lines[0] and "python3-websockets" in lines[0] and example in lines[0]
