"""An optional observer of the S3 requests this package makes (the worker's metrics use it).

The storage package knows nothing of Prometheus: a higher layer registers one callable with
:func:`set_observer`, and every HTTP attempt of every client that :func:`attach` was called on
(every client :func:`s3w_storage.client.make_client` builds) reports to it::

    observer(operation, status, sent, received)

``operation`` is the S3 API name (``PutObject``, ``GetObject``, ...), ``status`` the HTTP
status code or ``None`` when no response came (connection refused, timeout), ``sent`` the
object bytes of the request (``PutObject``/``UploadPart`` bodies, else 0) and ``received`` the
object bytes of the response (``GetObject`` bodies, else 0). Other transfer paths call
:func:`notify` with the same arguments. With no observer set, the cost is one function call
per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Observer = Callable[[str, int | None, int, int], None]
C = TypeVar("C")

#: Operations whose request body is object data.
UPLOADS = frozenset({"PutObject", "UploadPart"})
#: Operations whose response body is object data.
DOWNLOADS = frozenset({"GetObject"})

_observer: Observer | None = None


def set_observer(observer: Observer | None) -> None:
    """Send every request's report to ``observer`` (``None`` stops reporting)."""
    global _observer
    _observer = observer


def notify(operation: str, status: int | None, sent: int = 0, received: int = 0) -> None:
    """Report one request to the observer, if there is one."""
    observer = _observer
    if observer is not None:
        observer(operation, status, sent, received)


def _operation(event_name: str) -> str:
    return event_name.rsplit(".", 1)[-1]


def _length(headers: Any) -> int:
    try:
        return int(headers.get("Content-Length") or headers.get("content-length") or 0)
    except (TypeError, ValueError):
        return 0


def _before_send(request: Any, event_name: str, **_: Any) -> None:
    # Sent bytes are reported with the response (one report per attempt); remember them here.
    if _observer is not None and _operation(event_name) in UPLOADS:
        request.context["s3w_sent"] = _length(request.headers)


def _response_received(
    event_name: str,
    response_dict: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    if _observer is None:
        return
    operation = _operation(event_name)
    sent = int((context or {}).pop("s3w_sent", 0) or 0)
    if response_dict is None:
        notify(operation, None, sent, 0)
        return
    status = int(response_dict.get("status_code") or 0)
    received = 0
    if operation in DOWNLOADS and 200 <= status < 300:
        received = _length(response_dict.get("headers") or {})
    notify(operation, status, sent, received)


def attach(client: C) -> C:
    """Make ``client`` (a botocore S3 client) report its requests; returns the client."""
    events = client.meta.events  # type: ignore[attr-defined]
    events.register("before-send.s3", _before_send, unique_id="s3w-observe-send")
    events.register("response-received.s3", _response_received, unique_id="s3w-observe-recv")
    return client
