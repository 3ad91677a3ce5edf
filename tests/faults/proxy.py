"""A fault-injecting proxy between relconsole and a real service (TCP or Unix socket).

The fault matrix (docs/faults.md) injects each fault on the wire, in front of the real
Prometheus, HAProxy or Unleash, so the provider's own client code meets it exactly as it
would in production: a refused connection is a closed port, a slow service is an answer
that does not come, a truncated answer is a connection closed before the last bytes.

    proxy = FaultProxy(upstream=("127.0.0.1", 9090))   # or upstream="/run/haproxy.sock"
    proxy.url                                          # point the provider here
    proxy.set(Fault.refuse())                          # the port is closed from now on
    proxy.set(Fault.passthrough())                     # and open again

Changing the fault drops every open connection, so pooled keep-alive connections meet
the new fault at once instead of carrying on in the old mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Upstream = tuple[str, int] | Path | str
HTTP_METHODS = (b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD")


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float = 0.0
    reply_bytes: bytes = b""
    drop_tail: int = 0
    rewrite_fn: Callable[[bytes], bytes] | None = None

    @staticmethod
    def passthrough() -> Fault:
        return Fault("pass")

    @staticmethod
    def refuse() -> Fault:
        """Nothing listens: connect() fails with ECONNREFUSED (ENOENT for a socket path)."""
        return Fault("refuse")

    @staticmethod
    def hang() -> Fault:
        """The connection is accepted and the request read, but no answer ever comes."""
        return Fault("hang")

    @staticmethod
    def delay(seconds: float) -> Fault:
        """Every answer is held back this long, then delivered whole."""
        return Fault("delay", seconds=seconds)

    @staticmethod
    def reply(data: bytes) -> Fault:
        """Answer every request with these bytes instead of the service, then close."""
        return Fault("reply", reply_bytes=data)

    @staticmethod
    def cut(drop_tail: int) -> Fault:
        """The service's answer arrives without its last `drop_tail` bytes, then EOF."""
        return Fault("cut", drop_tail=drop_tail)

    @staticmethod
    def rewrite(fn: Callable[[bytes], bytes]) -> Fault:
        """Requests reach the service changed by `fn` (a command line half lost)."""
        return Fault("rewrite", rewrite_fn=fn)


def http_response(status: int, body: bytes | str = b"", *,
                  content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> bytes:
    """A complete, well-framed HTTP/1.1 answer (for `Fault.reply`)."""
    data = body.encode() if isinstance(body, str) else body
    reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error",
              502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
             f"Content-Length: {len(data)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """One request: an HTTP head and its Content-Length body, or one command line."""
    data = b""
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=2.0)
        except TimeoutError:
            return data
        if not chunk:
            return data
        data += chunk
        if b"\r\n\r\n" in data:
            if _http_whole(data, unframed=True):
                return data
        elif data.endswith(b"\n") and not data.startswith(HTTP_METHODS):
            return data  # a runtime-API command line


def _http_whole(message: bytes, *, unframed: bool) -> bool:
    """Whether an HTTP request or response has arrived whole, by its framing.

    `unframed`: the answer when there is no usable Content-Length or chunked framing —
    a request then ends with its head, a response only when the connection closes.
    """
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                return len(body) >= int(value.strip())
            except ValueError:
                return unframed
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return body.endswith(b"0\r\n\r\n")
    return unframed


class FaultProxy:
    """Listens on loopback (or a Unix socket path) and relays to `upstream`, with faults."""

    def __init__(self, upstream: Upstream, *, listen_path: Path | None = None) -> None:
        self.upstream = upstream
        self.listen_path = listen_path
        self.fault = Fault.passthrough()
        self.connections = 0
        self.requests: list[bytes] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._listen())

    # -- control, from the test's thread ------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def set(self, fault: Fault) -> None:
        self._run(self._set(fault))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- inside the proxy's loop ----------------------------------------------------------

    async def _set(self, fault: Fault) -> None:
        self.fault = fault
        for writer in list(self._writers):
            writer.close()
        if fault.kind == "refuse":
            await self._stop_listening()
        elif self._server is None:
            await self._listen()

    async def _listen(self) -> None:
        if self.listen_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.listen_path.unlink()
            self._server = await asyncio.start_unix_server(self._handle, path=self.listen_path)
        else:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self._port, reuse_address=True
            )
            self._port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.listen_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.listen_path.unlink()

    async def _shutdown(self) -> None:
        for writer in list(self._writers):
            writer.close()
        await self._stop_listening()

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self.upstream, tuple):
            return await asyncio.open_connection(*self.upstream)
        return await asyncio.open_unix_connection(str(self.upstream))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        fault = self.fault
        try:
            if fault.kind == "hang":
                self.requests.append(await _read_request(reader))
                await asyncio.sleep(3600)
            elif fault.kind == "reply":
                self.requests.append(await _read_request(reader))
                writer.write(fault.reply_bytes)
                await writer.drain()
            elif fault.kind == "cut":
                await self._relay_cut(reader, writer, fault.drop_tail)
            else:
                await self._relay(reader, writer, fault)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     fault: Fault) -> None:
        up_reader, up_writer = await self._connect_upstream()
        self._writers.add(up_writer)

        async def client_to_upstream() -> None:
            while data := await reader.read(65536):
                self.requests.append(data)
                if fault.rewrite_fn is not None:
                    data = fault.rewrite_fn(data)
                up_writer.write(data)
                await up_writer.drain()
            if up_writer.can_write_eof():
                up_writer.write_eof()

        async def upstream_to_client() -> None:
            while data := await up_reader.read(65536):
                if fault.kind == "delay":
                    await asyncio.sleep(fault.seconds)
                writer.write(data)
                await writer.drain()

        try:
            up = asyncio.ensure_future(client_to_upstream())
            await upstream_to_client()
            up.cancel()
        finally:
            self._writers.discard(up_writer)
            up_writer.close()

    async def _relay_cut(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         drop_tail: int) -> None:
        request = await _read_request(reader)
        self.requests.append(request)
        up_reader, up_writer = await self._connect_upstream()
        try:
            up_writer.write(request)
            await up_writer.drain()
            answer = b""
            # The whole answer: until the service closes, a complete HTTP answer has come
            # (a keep-alive server does not close), or the service falls quiet for 300 ms.
            while not (answer.startswith(b"HTTP/") and _http_whole(answer, unframed=False)):
                try:
                    chunk = await asyncio.wait_for(up_reader.read(65536), timeout=0.3)
                except TimeoutError:
                    break
                if not chunk:
                    break
                answer += chunk
            writer.write(answer[: max(0, len(answer) - drop_tail)])
            await writer.drain()
        finally:
            up_writer.close()
