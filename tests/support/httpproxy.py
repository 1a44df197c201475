"""An HTTP/1.1 reverse proxy on loopback that records every request and can flip one byte of a
request or response body, for conditions a real S3 server cannot produce on demand (a body
damaged on the wire).

Clients are pointed at ``proxy.url`` as their endpoint; the proxy relays each request to the
upstream server unchanged (the signed ``Host`` header included) and records its method, path
and headers. ``flip_put`` damages the body of the next N PUT requests that have one;
``flip_get`` damages the body of the next N GET responses that have one. Only the body is
changed, never its length, so the damage is visible only to whoever checks the bytes.

    with HttpProxy(upstream_port, flip_put=1) as proxy:
        ... endpoint = proxy.url ...
        assert proxy.flipped_puts == 1
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType


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


@dataclass
class HttpProxy:
    upstream_port: int
    flip_put: int = 0
    flip_get: int = 0
    requests: list[Recorded] = field(default_factory=list)
    flipped_puts: int = 0
    flipped_gets: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._accept = threading.Thread(target=self._serve, name="httpproxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HttpProxy:
        self._accept.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._accept.join(timeout=5)
        self._listener.close()

    def puts(self) -> list[Recorded]:
        """Every PUT with a body (PutObject, UploadPart; not CopyObject)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "PUT" and "x-amz-copy-source" not in r.headers
            ]

    # ------------------------------------------------------------------ relaying

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

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
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        reader = client.makefile("rb")
        answers = upstream.makefile("rb")
        try:
            while not self._stopped.is_set():
                head = _read_head(reader)
                if head is None:
                    return
                request_line, headers, raw_head = head
                method, target, _version = request_line.split(" ", 2)
                body = _read_body(reader, headers)
                record = Recorded(method, target, headers, body_size=len(body))
                with self._lock:
                    self.requests.append(record)
                if method == "PUT" and body and self._take("put"):
                    body = _flip(body)
                upstream.sendall(raw_head + body)
                answer = _read_head(answers)
                if answer is None:
                    return
                status_line, answer_headers, answer_head = answer
                record.status = int(status_line.split(" ", 2)[1])
                answer_body = b"" if method == "HEAD" else _read_body(answers, answer_headers)
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


def _flip(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]


def _read_head(stream: object) -> tuple[str, dict[str, str], bytes] | None:
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


def _read_body(stream: object, headers: dict[str, str]) -> bytes:
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
