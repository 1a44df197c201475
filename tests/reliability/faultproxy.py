"""A fault-injecting TCP proxy for HTTP on loopback, for faults a real S3 server will not
produce on demand.

Each accepted connection takes the next action from a script (then ``then`` for the rest):

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
from collections.abc import Sequence
from types import TracebackType

SLOWDOWN = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        script: Sequence[str] = (),
        then: str = "pass",
        hold: float = 30.0,
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.script = list(script)
        self.then = then
        self.hold = hold
        self.actions: list[str] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, name="faultproxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def attempts(self) -> int:
        with self._lock:
            return len(self.actions)

    def __enter__(self) -> FaultProxy:
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
        for thread in self._threads:
            thread.join(timeout=5)

    # ---------------------------------------------------------------- serving

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                action = self.script.pop(0) if self.script else self.then
                self.actions.append(action)
            thread = threading.Thread(target=self._handle, args=(conn, action), daemon=True)
            self._threads.append(thread)
            thread.start()

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
