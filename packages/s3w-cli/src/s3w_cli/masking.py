"""Passwords in URLs hidden the way the programs that read those URLs parse them.

PostgreSQL URLs are read by SQLAlchemy and broker URLs by kombu, and both accept passwords
that ``urllib`` would cut at a ``/``, ``#`` or ``?`` (and a raw ``@`` leaves the reading
ambiguous). So a URL is masked with its consumer's own parser, and the result is checked
against every reading of the password (the consumer's, ``urllib``'s, and the widest: all
from the user's ``:`` to the last ``@``); when any reading would still show, the widest
span is masked instead.

    mask_url("postgresql://u:Sup3r/S3cret@host/db")  ->  "postgresql://u:***@host/db"
    scrub("could not connect to S3cret@host", urls)  ->  "could not connect to ********@host"
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "********"
#: Schemes read by SQLAlchemy (Papermerge's database URL), and by kombu (the broker).
DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite", "mysql", "mariadb", "oracle", "mssql")
BROKER_SCHEMES = ("redis", "rediss", "redis+socket", "amqp", "amqps", "pyamqp", "sqs")
#: The environment variables that hold URLs with credentials.
URL_VARIABLES = (
    "PM_DB_URL",
    "PM_REDIS_URL",
    "S3W_BROKER_URL",
    "CELERY_BROKER_URL",
    "S3W_PROGRESS_REDIS_URL",
)
#: Query parameters whose values are secrets.
_SECRET_QUERY = re.compile(r"(?i)(password|passwd|pwd|secret|token|key)=[^&#]*")
#: Pieces of a password (split at URL delimiters) at least this long are hidden too.
MIN_PIECE = 4
_DELIMITERS = re.compile(r"[/#?@:%]")


def _scheme(url: str) -> str:
    return url.partition("://")[0].split("+")[0].lower() if "://" in url else ""


def _widest(url: str) -> tuple[str, str | None, str]:
    """(user, password or None, after) with the password read as wide as possible: from the
    user's ':' to the last '@' (which no host or port can contain)."""
    _scheme_part, _sep, rest = url.partition("://")
    if "@" not in rest:
        return "", None, rest
    userinfo, _at, after = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None), after


def passwords(url: str) -> set[str]:
    """Every string that is the password of ``url`` under some parser's reading (raw and
    percent-decoded)."""
    found: set[str] = set()
    scheme = _scheme(url)
    if scheme in DATABASE_SCHEMES:
        try:
            from sqlalchemy.engine import make_url

            found.add(make_url(url).password or "")
        except (ImportError, ValueError, TypeError, AttributeError):  # not parseable there
            pass
    if scheme in BROKER_SCHEMES or url.partition("://")[0] in BROKER_SCHEMES:
        try:
            from kombu.utils.url import parse_url

            found.add(str(parse_url(url).get("password") or ""))
        except (ImportError, ValueError, TypeError, AttributeError):
            pass
    with contextlib.suppress(ValueError):
        found.add(urlsplit(url).password or "")
    _user, widest, _after = _widest(url)
    if widest:
        found.add(widest)
    found |= {unquote(p) for p in found}
    return {p for p in found if p}


def needles(url: str) -> set[str]:
    """:func:`passwords`, and each piece of one between URL delimiters that is at least
    :data:`MIN_PIECE` long (a parser that cut the password there may print the piece as a
    host name or a port)."""
    found = passwords(url)
    for secret in list(found):
        found.update(p for p in _DELIMITERS.split(secret) if len(p) >= MIN_PIECE)
    return found


def _render(url: str) -> str:
    """The consumer parser's own masked rendering, where it has one; else urllib's."""
    if _scheme(url) in DATABASE_SCHEMES:
        try:
            from sqlalchemy.engine import make_url

            return make_url(url).render_as_string(hide_password=True).replace("***", MASK)
        except (ImportError, ValueError, TypeError, AttributeError):
            pass
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:{MASK}@{netloc.rsplit('@', 1)[-1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_url(url: str | None) -> str | None:
    """``url`` with its password (under every reading) and secret query values hidden."""
    if not url or "://" not in url:
        return url
    secrets = needles(url)
    try:
        masked = _render(url)
    except ValueError:
        masked = url
    if any(secret in masked for secret in secrets):
        user, password, after = _widest(url)
        head = url.partition("://")[0]
        masked = f"{head}://{user}:{MASK}@{after}" if password is not None else url
        if any(secret in masked for secret in secrets):  # nothing sensible left to show
            masked = f"{head}://{MASK}"
    masked = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={MASK}", masked)
    if any(secret in masked for secret in secrets):  # a query spelling the pattern missed
        masked = f"{url.partition('://')[0]}://{MASK}"
    return masked


def configured_urls() -> list[str]:
    """The credential-bearing URLs in this process's environment."""
    return [value for name in URL_VARIABLES if (value := os.environ.get(name, "").strip())]


def scrub(text: str, urls: Iterable[str] | None = None) -> str:
    """``text`` with every reading of the URLs' passwords, and their pieces (see
    :func:`needles`), replaced by the mask (default URLs: the environment's)."""
    secrets: set[str] = set()
    for url in configured_urls() if urls is None else urls:
        secrets |= needles(url)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
