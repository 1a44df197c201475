"""Temporary credentials as s3w reads them, and SeaweedFS STS session tokens (HS256 JWTs)
altered or re-signed with another expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any


def as_env(credentials: Mapping[str, Any]) -> dict[str, str]:
    """The AWS_* variables for temporary credentials in STS's shape (``AccessKeyId``, ...)."""
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def altered(token: str) -> str:
    """``token`` with the first character of its signature changed."""
    header, payload, signature = token.split(".")
    first = "B" if signature[0] == "A" else "A"
    return f"{header}.{payload}.{first}{signature[1:]}"


def with_expiry(token: str, expires: int, key: bytes) -> str:
    """``token`` with its ``exp`` claim set to ``expires`` (Unix seconds) and signed again
    with ``key``, the server's signing key: the token the server would have issued."""
    header, payload, _ = token.split(".")
    claims = json.loads(_unb64(payload))
    claims["exp"] = expires
    signed = f"{header}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    signature = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64(signature)}"
