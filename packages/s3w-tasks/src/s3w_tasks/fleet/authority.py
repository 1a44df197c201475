"""Authority for s3w's own (fleet) tasks: only messages the operator's CLI signed are run.

Papermerge core sends the contract's tasks unsigned, and whoever can write to the broker can
send any of them; none of them destroys more than the ids it names. s3w's own tasks (the
distributed-sync shard) act on whole folders and may delete, so they carry an HMAC-SHA256
over the whole message (task name and every kwarg, delete limits and scope included, and an
expiry) made with ``S3W_FLEET_KEY``, a key that lives only in the environment of the
operator's CLI and of the workers that serve the fleet, never in the broker:

    kwargs = sign(SYNC_SHARD, {"within": "docvers/ab/", ...}, key)   # the coordinator
    verify(SYNC_SHARD, kwargs, key)                                   # the worker, first

A worker without the key registers no fleet task (:func:`fleet_modules`), and fleet tasks go
to their own queue (``S3W_FLEET_QUEUE_NAME``, default ``{PM_PREFIX}_s3fleet``), which a worker
started for Papermerge does not consume. docs/security.md has the threat model.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any, Final

from s3w_tasks.errors import PermanentError

if TYPE_CHECKING:
    from s3w_storage.sync import SyncOptions

#: The distributed-sync shard task (see :mod:`s3w_tasks.fleet.shard_sync`).
SYNC_SHARD: Final = "s3w_sync_shard"
#: s3w's own task names: not part of the Papermerge contract, signed, on the fleet queue.
TASK_NAMES: Final[frozenset[str]] = frozenset({SYNC_SHARD})
#: Modules that register the fleet tasks (imported by a worker that holds the key).
MODULES: Final = ("s3w_tasks.fleet.shard_sync",)
FLEET: Final = "s3fleet"
#: The kwargs the signature travels in (everything else is what it covers).
SIGNATURE: Final = "signature"
EXPIRES: Final = "expires"
#: The SyncOptions fields a coordinator sends a shard (``within`` and ``processes`` are the
#: task's own).
SENT_OPTIONS: Final = ("delete", "max_delete", "dry_run", "checksum", "include", "exclude", "jobs")


class FleetRefused(PermanentError):
    """A fleet message without a valid, unexpired signature: nothing was done."""


def fleet_queue() -> str:
    """``S3W_FLEET_QUEUE_NAME`` when set, else ``prefixed("s3fleet")``."""
    from s3w_tasks.contract import prefixed
    from s3w_tasks.settings import get_settings

    settings = get_settings()
    return settings.fleet_queue_name or prefixed(FLEET, settings.prefix)


def fleet_key() -> bytes | None:
    """The key from ``S3W_FLEET_KEY`` (None when unset)."""
    from s3w_tasks.settings import get_settings

    secret = get_settings().fleet_key
    return secret.get_secret_value().encode() if secret is not None else None


def require_key() -> bytes:
    from s3w_tasks.errors import ConfigurationError

    key = fleet_key()
    if key is None:
        raise ConfigurationError(
            "S3W_FLEET_KEY is not set: distributed runs need the same secret key on the "
            "coordinator and on every fleet worker (e.g. openssl rand -hex 32); it is never "
            "sent through the broker"
        )
    return key


def fleet_modules() -> list[str]:
    """The modules a worker imports for fleet tasks: none without ``S3W_FLEET_KEY``."""
    return list(MODULES) if fleet_key() is not None else []


def options_to_kwargs(options: SyncOptions) -> dict[str, Any]:
    """The sync options a coordinator sends to its shards (signed with the rest)."""
    data = {name: getattr(options, name) for name in SENT_OPTIONS}
    data["include"], data["exclude"] = list(options.include), list(options.exclude)
    return data


def _canonical(name: str, kwargs: dict[str, Any]) -> bytes:
    body = {k: v for k, v in kwargs.items() if k != SIGNATURE}
    # Through JSON and back first: what is signed is exactly what the worker will decode.
    body = json.loads(json.dumps(body))
    return json.dumps(
        {"task": name, "kwargs": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


def _mac(key: bytes, name: str, kwargs: dict[str, Any]) -> str:
    return hmac.new(key, _canonical(name, kwargs), hashlib.sha256).hexdigest()


def sign(
    name: str, kwargs: dict[str, Any], key: bytes, *, ttl: float, now: float | None = None
) -> dict[str, Any]:
    """``kwargs`` with an expiry ``ttl`` seconds from now and the signature over it all."""
    signed = {k: v for k, v in kwargs.items() if k != SIGNATURE}
    signed[EXPIRES] = int((time.time() if now is None else now) + ttl)
    signed[SIGNATURE] = _mac(key, name, signed)
    return signed


def verify(name: str, kwargs: dict[str, Any], key: bytes, *, now: float | None = None) -> None:
    """Raise :class:`FleetRefused` unless ``kwargs`` carry a valid signature made with
    ``key`` for task ``name`` that has not expired. The message never names the key."""
    given = kwargs.get(SIGNATURE)
    if not isinstance(given, str) or not given:
        raise FleetRefused(
            f"refused an unsigned {name} message: fleet tasks run only when signed with "
            "S3W_FLEET_KEY by the operator's s3w; nothing was done"
        )
    if not hmac.compare_digest(given, _mac(key, name, kwargs)):
        raise FleetRefused(
            f"refused a {name} message whose signature does not match (forged, altered, or "
            "signed with another S3W_FLEET_KEY); nothing was done"
        )
    expires = kwargs.get(EXPIRES)
    current = time.time() if now is None else now
    if not isinstance(expires, int) or isinstance(expires, bool) or expires < current:
        raise FleetRefused(
            f"refused an expired {name} message (expired {current - float(expires or 0):.0f} s "
            "ago; S3W_FLEET_MESSAGE_TTL); nothing was done"
        )
