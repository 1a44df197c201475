"""AWS Signature Version 4 for the lean requests (:mod:`s3w_storage.lean`), computed directly.

botocore's ``S3SigV4Auth`` costs about half a millisecond of CPU per request (an
``AWSRequest``, header parsing through the email package, URL re-splitting); on small
objects that signing, not the transfer, took most of the client's CPU. This builds the same
canonical request for a path-style or virtual-hosted URL whose path is already
percent-encoded and whose query string, if any, is already canonical (parameters sorted,
names and values encoded), and caches the day's signing key. The payload is
``UNSIGNED-PAYLOAD`` (TLS, or a Content-MD5 header, protects the body) or, for requests
without a body, the hash of the empty string.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
#: Headers never signed (proxies and clients may change them).
_UNSIGNED_HEADERS = frozenset({"user-agent", "expect", "x-amzn-trace-id", "content-length"})


class Signer:
    """Signs requests with credentials that may refresh (roles, SSO): each request takes a
    consistent snapshot through ``get_frozen_credentials()``."""

    def __init__(self, credentials: Any, region: str, service: str = "s3") -> None:
        self._credentials = credentials
        self.region = region
        self.service = service
        self._lock = threading.Lock()
        self._key: tuple[str, str, bytes] | None = None  # (secret, date, signing key)

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], *, has_body: bool
    ) -> dict[str, str]:
        """``headers`` plus Host, X-Amz-Date, X-Amz-Content-SHA256, the session token if
        any, and Authorization, for a request to ``url`` (path already percent-encoded)."""
        frozen = self._credentials.get_frozen_credentials()
        now = datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        parts = urlsplit(url)
        signed: dict[str, str] = {name: value for name, value in headers.items()}
        signed["Host"] = parts.netloc
        signed["X-Amz-Date"] = stamp
        signed["X-Amz-Content-SHA256"] = UNSIGNED if has_body else EMPTY_SHA256
        if frozen.token:
            signed["X-Amz-Security-Token"] = frozen.token
        canonical = sorted(
            (name.lower(), " ".join(str(value).split()))
            for name, value in signed.items()
            if name.lower() not in _UNSIGNED_HEADERS
        )
        names = ";".join(name for name, _ in canonical)
        request = "\n".join(
            [
                method,
                parts.path or "/",
                parts.query,
                "".join(f"{name}:{value}\n" for name, value in canonical),
                names,
                signed["X-Amz-Content-SHA256"],
            ]
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                stamp,
                scope,
                hashlib.sha256(request.encode("utf-8")).hexdigest(),
            ]
        )
        key = self._signing_key(frozen.secret_key, day)
        signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        signed["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}"
        )
        return signed

    def _signing_key(self, secret: str, day: str) -> bytes:
        with self._lock:
            if self._key is not None and self._key[0] == secret and self._key[1] == day:
                return self._key[2]
            key = _hmac(("AWS4" + secret).encode("utf-8"), day)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            self._key = (secret, day, key)
            return key


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
