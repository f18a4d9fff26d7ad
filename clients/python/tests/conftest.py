"""Test kit: the server under test is a real one, started by test/python-client.test.ts.

Environment (set by the Node test; a test skips without ESCAI_URL):
  ESCAI_URL     http://127.0.0.1:PORT of the server
  ESCAI_SECRET  its HS256 secret, to mint tokens here (stdlib hmac, no PyJWT)
  ESCAI_SIGNAL  a directory for files the Node side waits on (some tests)
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

URL = os.environ.get("ESCAI_URL", "")
SECRET = os.environ.get("ESCAI_SECRET", "")


RUN = os.urandom(3).hex()


def uniq(name: str) -> str:
    """A name of this run: tests may run twice against one server."""
    return f"{name}_{RUN}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(sub: str, roles: list[str], ttl: float = 300, permissions: Optional[list[str]] = None) -> str:
    """An HS256 token as the server's signToken makes them."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps({"sub": sub, "roles": roles, "permissions": permissions or [], "iat": now, "exp": now + int(ttl)}).encode())
    sig = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(sig)}"


@pytest.fixture
def server() -> str:
    if not URL or not SECRET:
        pytest.skip("ESCAI_URL / ESCAI_SECRET not set: run through test/python-client.test.ts")
    return URL


def get_json(path: str, token: str) -> Any:
    req = urllib.request.Request(URL + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read().decode())


def history(agent_id: str, token: str) -> list[dict[str, Any]]:
    """Every event of an agent's stream still in history, oldest first."""
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        page = get_json(f"/api/v1/agents/{agent_id}/events?since={since}&limit=1000", token)
        out.extend(page["events"])
        if not page["events"]:
            return out
        since = page["events"][-1]["offset"]


def signal(name: str) -> None:
    """Creates a file the Node side of the test waits for."""
    directory = os.environ.get("ESCAI_SIGNAL")
    if directory:
        Path(directory, name).write_text("1")


class Proxy:
    """A TCP proxy to the server, run in a thread: a real network path a test can cut.

    ``cut()`` aborts every open connection (both sides) at once.
    ``drop_responses``: for that many connections, the request is forwarded
    but the server's answer is thrown away and the client's socket closed, as
    when a connection dies after the server accepted a request.
    """

    def __init__(self, target_port: int, drop_responses: int = 0) -> None:
        self.target_port = target_port
        self.drop_responses = drop_responses
        self.dropped = 0
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        drop = self.dropped < self.drop_responses
        if drop:
            self.dropped += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, discard: bool) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    if discard:
                        # The server answered: the client never sees it.
                        writer.transport.abort()
                        up_writer.transport.abort()
                        return
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                try:
                    dst.close()
                except Exception:  # noqa: BLE001
                    pass

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, drop))

    def cut(self) -> int:
        """Aborts every connection now; returns how many sockets were cut."""
        done = threading.Event()
        count = [0]

        def abort() -> None:
            for w in self._writers:
                if not w.transport.is_closing():
                    count[0] += 1
                w.transport.abort()
            self._writers.clear()
            done.set()

        self._loop.call_soon_threadsafe(abort)
        done.wait(5)
        return count[0]

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def proxy_factory(server: str) -> Any:
    made: list[Proxy] = []

    def make(drop_responses: int = 0) -> Proxy:
        port = int(server.rsplit(":", 1)[1])
        p = Proxy(port, drop_responses)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


async def collect(w: Any, until: Callable[[list[dict[str, Any]]], bool], timeout: float) -> list[dict[str, Any]]:
    """Iterates the watcher until ``until(got)`` holds (or ``timeout`` passes); what it got."""
    got: list[dict[str, Any]] = []

    async def consume() -> None:
        async for item in w:
            got.append(item)
            if until(got):
                return

    await asyncio.wait_for(consume(), timeout)
    return got


async def nothing_more(w: Any, quiet: float = 0.5) -> list[Any]:
    """What else the watcher yields within ``quiet`` seconds (a test asserts it is []). Ends its iteration: use it last."""
    extra: list[Any] = []

    async def more() -> None:
        async for item in w:
            extra.append(item)

    try:
        await asyncio.wait_for(more(), quiet)
    except asyncio.TimeoutError:
        pass
    return extra
