"""Ids from messages: one or a batch of UUIDs parsed, the malformed ones reported together."""

from __future__ import annotations

import uuid
from typing import Any

from s3w_storage.errors import InvalidKey
from s3w_storage.keys import canonical_id
from s3w_tasks.errors import PermanentError


def parse_ids(values: Any, what: str) -> list[str]:
    """Canonical UUID strings from one id or a list of them, duplicates dropped, order kept."""
    ids, malformed = split_ids(values, what)
    if malformed:
        raise PermanentError(malformed[0])
    return ids


def split_ids(values: Any, what: str) -> tuple[list[str], list[str]]:
    """Like :func:`parse_ids`, but malformed items come back as messages (at most five and a
    count) instead of raising, so a batch can do its valid ids and then report the rest."""
    if values is None:
        raise PermanentError(f"no {what} given")
    items = [values] if isinstance(values, (str, uuid.UUID)) else list(values)
    parsed, malformed = [], []
    for item in items:
        try:
            parsed.append(canonical_id(item))
        except InvalidKey:
            malformed.append(f"{str(item)[:80]!r} is not a valid {what} (expected a UUID)")
    if len(malformed) > 5:
        malformed = [*malformed[:5], f"... ({len(malformed)} malformed ids in all)"]
    return list(dict.fromkeys(parsed)), malformed


def refuse(problems: list[str]) -> None:
    """Raise one PermanentError listing the batch's problems (after its good ids are done)."""
    if problems:
        raise PermanentError("; ".join(problems))


def parse_id(value: Any, what: str) -> str:
    """One canonical UUID string (a list is refused)."""
    if isinstance(value, (list, tuple)):
        raise PermanentError(f"expected one {what}, got a list")
    return parse_ids(value, what)[0]


def shorten(ids: list[str], limit: int = 5) -> str:
    """At most ``limit`` ids for a message, and how many there were in all."""
    head = ",".join(ids[:limit])
    return head + (f",... ({len(ids)} in all)" if len(ids) > limit else "")
