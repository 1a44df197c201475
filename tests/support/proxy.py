"""HTTP proxies on loopback for conditions a real S3 server cannot produce on demand.

Clients are pointed at ``proxy.url`` as their endpoint. Both proxies share one listener and
accept loop (:class:`_Proxy`):

:class:`HttpProxy` relays each request to the upstream server unchanged (the signed ``Host``
header included) and records its method, path and headers. ``flip_put`` damages the body of
the next N PUT requests that have one; ``flip_get`` damages the body of the next N GET
responses that have one. Only the body is changed, never its length, so the damage is
visible only to whoever checks the bytes.

    with HttpProxy(upstream_port, flip_put=1) as proxy:
        ... endpoint = proxy.url ...
        assert proxy.flipped_puts == 1

:class:`FaultProxy` gives each accepted connection the next action from a script (then
``then`` for the rest):

- ``pass``: relay bytes both ways to the upstream server until either side closes;
- ``reset``: read the request head, then close with an RST (``SO_LINGER`` 0);
- ``503``: read the request and answer ``503 SlowDown`` (S3's throttling error), then close;
- ``slow``: read the request and answer nothing, holding the connection until the client
  gives up (its read timeout) or ``hold`` seconds pass.

``attempts`` counts the connections accepted and ``actions`` lists what each one got. Every
fault closes its connection, so a retrying client opens a new one: attempts = requests.

    with FaultProxy(upstream_port, script=["reset", "503"], then="pass") as proxy:
        ... endpoint = proxy.url ...
        assert proxy.actions == ["reset", "503", "pass"]
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

SLOWDOWN = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class _Proxy:
    """A listener on a free loopback port whose accept loop hands each connection to
    :meth:`_accepted` on a thread of its own; a context manager that stops it on exit."""

    name = "proxy"
    #: Whether closing waits for the connection threads (each checks for the stop within
    #: a fraction of a second); a relay blocked on an idle keep-alive connection would not.
    joins = True

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, name=self.name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._accept.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stopped.set()
        self._accept.join(timeout=5)
        self._listener.close()
        for thread in self._threads if self.joins else ():
            thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._accepted(conn), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _accepted(self, conn: socket.socket) -> Callable[[], None]:
        """What the connection's thread runs."""
        raise NotImplementedError


# ---------------------------------------------------------------------- recording proxy


@dataclass
class Recorded:
    """One relayed request: method, target (path and query) and headers (lower-case names)."""

    method: str
    target: str
    headers: dict[str, str]
    status: int = 0
    body_size: int = 0

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


class HttpProxy(_Proxy):
    """Relays and records every request; damages the bodies it is told to (see above)."""

    name = "httpproxy"
    joins = False

    def __init__(self, upstream_port: int, flip_put: int = 0, flip_get: int = 0) -> None:
        super().__init__(upstream_port)
        self.flip_put = flip_put
        self.flip_get = flip_get
        self.requests: list[Recorded] = []
        self.flipped_puts = 0
        self.flipped_gets = 0

    def puts(self) -> list[Recorded]:
        """Every PUT with a body (PutObject, UploadPart; not CopyObject)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "PUT" and "x-amz-copy-source" not in r.headers
            ]

    def _accepted(self, conn: socket.socket) -> Callable[[], None]:
        return lambda: self._relay(conn)

    def _take(self, kind: str) -> bool:
        with self._lock:
            if kind == "put" and self.flip_put > 0:
                self.flip_put -= 1
                self.flipped_puts += 1
                return True
            if kind == "get" and self.flip_get > 0:
                self.flip_get -= 1
                self.flipped_gets += 1
                return True
            return False

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        reader = client.makefile("rb")
        answers = upstream.makefile("rb")
        try:
            while not self._stopped.is_set():
                head = _read_head_from(reader)
                if head is None:
                    return
                request_line, headers, raw_head = head
                method, target, _version = request_line.split(" ", 2)
                body = _read_body_from(reader, headers)
                record = Recorded(method, target, headers, body_size=len(body))
                with self._lock:
                    self.requests.append(record)
                if method == "PUT" and body and self._take("put"):
                    body = _flip(body)
                upstream.sendall(raw_head + body)
                answer = _read_head_from(answers)
                if answer is None:
                    return
                status_line, answer_headers, answer_head = answer
                record.status = int(status_line.split(" ", 2)[1])
                answer_body = b"" if method == "HEAD" else _read_body_from(answers, answer_headers)
                damage = method == "GET" and record.status in (200, 206) and answer_body
                if damage and self._take("get"):
                    answer_body = _flip(answer_body)
                client.sendall(answer_head + answer_body)
                if answer_headers.get("connection", "").lower() == "close":
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                client.close()
            with contextlib.suppress(OSError):
                upstream.close()


# ---------------------------------------------------------------------- fault proxy


class FaultProxy(_Proxy):
    """Gives each connection the next scripted fault (see above)."""

    name = "faultproxy"

    def __init__(
        self,
        upstream_port: int,
        *,
        script: Sequence[str] = (),
        then: str = "pass",
        hold: float = 30.0,
    ) -> None:
        super().__init__(upstream_port)
        self.script = list(script)
        self.then = then
        self.hold = hold
        self.actions: list[str] = []

    @property
    def attempts(self) -> int:
        with self._lock:
            return len(self.actions)

    def _accepted(self, conn: socket.socket) -> Callable[[], None]:
        with self._lock:
            action = self.script.pop(0) if self.script else self.then
            self.actions.append(action)
        return lambda: self._handle(conn, action)

    def _handle(self, conn: socket.socket, action: str) -> None:
        try:
            if action == "pass":
                self._relay(conn)
            elif action == "reset":
                _read_head(conn)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif action == "503":
                _read_request(conn)
                conn.sendall(
                    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                    + f"Content-Length: {len(SLOWDOWN)}\r\nConnection: close\r\n\r\n".encode()
                    + SLOWDOWN
                )
            elif action == "slow":
                _read_request(conn)
                self._wait_for_close(conn)
            else:
                raise ValueError(f"unknown action {action!r}")
        except OSError:
            pass  # the client went away first; nothing to do
        finally:
            conn.close()

    def _wait_for_close(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + self.hold
        while not self._stopped.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([conn], [], [], 0.2)
            if readable and not conn.recv(65536):
                return

    def _relay(self, conn: socket.socket) -> None:
        with socket.create_connection(self.upstream, timeout=10) as up:
            sockets = [conn, up]
            while not self._stopped.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (up if sock is conn else conn).sendall(data)


def _read_head(conn: socket.socket) -> bytes:
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _read_request(conn: socket.socket) -> None:
    """The head and, per Content-Length, the body (answering ``Expect: 100-continue``)."""
    data = _read_head(conn)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"expect" and b"100-continue" in value.lower():
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    with contextlib.suppress(TimeoutError):
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk


def _flip(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]


def _read_head_from(stream: object) -> tuple[str, dict[str, str], bytes] | None:
    readline = stream.readline  # type: ignore[attr-defined]
    first = readline(65537)
    if not first:
        return None
    raw = first
    headers: dict[str, str] = {}
    while True:
        line = readline(65537)
        raw += line
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return first.decode("latin-1").strip(), headers, raw


def _read_body_from(stream: object, headers: dict[str, str]) -> bytes:
    read = stream.read  # type: ignore[attr-defined]
    readline = stream.readline  # type: ignore[attr-defined]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        # Relayed chunk by chunk as received (framing included), so it can be re-sent as is.
        out = b""
        while True:
            size_line = readline(65537)
            out += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = readline(65537)
                    out += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        return out
            out += read(size + 2)
    length = int(headers.get("content-length", "0") or 0)
    return read(length) if length else b""
