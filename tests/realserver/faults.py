"""A fault-injecting HTTP/1.1 proxy in front of a real server, for the failure tests.

    client ──▶ FaultProxy (127.0.0.1:random) ──▶ real vLLM server
                  │ next fault queued for this path, if any:
                  ├─ status(429, retry_after="1")  answer it, keep the connection
                  ├─ hang()                        read the request, never answer
                  ├─ drop_before_response()        close the connection unanswered
                  ├─ drop_mid_stream(after_bytes)  forward, cut the reply after N body bytes
                  └─ garbage(body)                 answer 200 with `body`

Requests without a queued fault pass through unchanged (one upstream connection per
request; the client's connection is kept alive across requests, so a test can make a
pooled connection go stale). Every request is recorded with its arrival time
(`seen`), so a test can measure how long a client waited before retrying. The proxy
runs its own event loop in a thread: tests drive their clients with `asyncio.run`.
Every wait is bounded (`HANG_LIMIT_S`).
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass

HANG_LIMIT_S = 60.0
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 200
    retry_after: str | None = None
    body: bytes = b""
    content_type: str = "application/json"
    after_bytes: int = 0

    @classmethod
    def status_code(cls, status: int, *, retry_after: str | None = None,
                    message: str = "injected fault") -> Fault:
        body = ('{"error": {"message": "%s", "type": "injected", "code": %d}}'
                % (message, status)).encode()
        return cls("status", status, retry_after, body)

    @classmethod
    def hang(cls) -> Fault:
        return cls("hang")

    @classmethod
    def drop_before_response(cls) -> Fault:
        return cls("drop_before")

    @classmethod
    def drop_mid_stream(cls, after_bytes: int) -> Fault:
        return cls("drop_mid", after_bytes=after_bytes)

    @classmethod
    def garbage(cls, body: bytes, content_type: str = "application/json") -> Fault:
        return cls("garbage", 200, None, body, content_type)


@dataclass(frozen=True)
class Seen:
    path: str
    at: float  # time.monotonic()
    fault: str  # the fault's kind, or "pass"


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.seen: list[Seen] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fault-proxy")
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- control, from the test's thread -------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def inject(self, *faults: Fault, path: str = "/v1/chat/completions") -> None:
        """Queue `faults` for the next requests to `path`, one each, in order."""
        with self._lock:
            self._faults.setdefault(path, deque()).extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.seen = []

    def arrivals(self, path: str = "/v1/chat/completions") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    # -- the proxy loop ------------------------------------------------------------
    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            writer.transport.abort()

    async def _one_request(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the client connection is done."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        fault = self._take(path)
        if fault is None:
            return await self._forward(lines, body, writer, cut_after=None)
        if fault.kind in ("status", "garbage"):
            await _answer(writer, fault)
            return True
        if fault.kind == "hang":
            try:
                await asyncio.wait_for(reader.read(1), HANG_LIMIT_S)
            except asyncio.TimeoutError:
                pass
            return False
        if fault.kind == "drop_before":
            return False
        return await self._forward(lines, body, writer, cut_after=fault.after_bytes)

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            fault = queue.popleft() if queue else None
            self.seen.append(Seen(path, time.monotonic(), fault.kind if fault else "pass"))
        return fault

    async def _forward(self, lines: list[str], body: bytes, writer: asyncio.StreamWriter,
                       cut_after: int | None) -> bool:
        """Relay the request upstream (Connection: close) and its answer back, whole or
        cut after `cut_after` body bytes (then False: drop the client)."""
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith("connection:")]
            up_writer.write("\r\n".join([lines[0], *kept, "Connection: close", "", ""])
                            .encode("latin-1") + body)
            await up_writer.drain()
            head = await up_reader.readuntil(b"\r\n\r\n")
            framed = any(h in head.lower() for h in (b"content-length:", b"transfer-encoding:"))
            writer.write(_without_connection_header(head) if framed else head)
            sent = 0
            while chunk := await up_reader.read(65536):
                if cut_after is not None and sent + len(chunk) >= cut_after:
                    writer.write(chunk[: max(0, cut_after - sent)])
                    await writer.drain()
                    return False
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
            return framed
        finally:
            up_writer.transport.abort()


def _without_connection_header(head: bytes) -> bytes:
    lines = head.split(b"\r\n")
    return b"\r\n".join(ln for ln in lines if not ln.lower().startswith(b"connection:"))


async def _answer(writer: asyncio.StreamWriter, fault: Fault) -> None:
    headers = [f"HTTP/1.1 {fault.status} {_REASONS.get(fault.status, 'Status')}",
               f"Content-Type: {fault.content_type}", f"Content-Length: {len(fault.body)}"]
    if fault.retry_after is not None:
        headers.append(f"Retry-After: {fault.retry_after}")
    writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + fault.body)
    await writer.drain()
