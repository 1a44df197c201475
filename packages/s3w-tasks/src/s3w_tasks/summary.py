"""The summary of a one-off run (``s3w sync``, ``s3w migrate``, ...): pushed, and kept.

It is pushed to a Prometheus Pushgateway when ``S3W_PUSHGATEWAY_URL`` is set, and kept in
Redis as the command's last run for ``s3w status``.

A command builds one :class:`RunSummary` and calls :func:`publish`. The Pushgateway group is
``job="s3w_<command>"`` plus the deployment's s3 queue as ``deployment``; each push replaces
the group's earlier values. The samples (names in docs/observability.md)::

    s3w_run_success            1 when the run finished without failures, else 0
    s3w_run_timestamp_seconds  when it finished (Unix time)
    s3w_run_duration_seconds   how long it took
    s3w_run_items{result}      items by result (uploaded, copied, unchanged, failed, ...)
    s3w_run_bytes{result}      bytes by result (uploaded, copied)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("s3w_tasks.summary")

#: Every sample name :func:`push` sends.
RUN_SAMPLES = (
    "s3w_run_success",
    "s3w_run_timestamp_seconds",
    "s3w_run_duration_seconds",
    "s3w_run_items",
    "s3w_run_bytes",
)
#: The environment names that give a summary somewhere to go (the Redis of ``s3w status``,
#: a Pushgateway): with none of them set, :func:`publish` has nothing to do and loads nothing.
DESTINATIONS = (
    "PM_REDIS_URL",
    "S3W_BROKER_URL",
    "CELERY_BROKER_URL",
    "S3W_PROGRESS_REDIS_URL",
    "S3W_PUSHGATEWAY_URL",
)
#: How long a command's last run is kept in Redis.
KEEP = 90 * 24 * 3600
TIMEOUT = 10.0


@dataclass
class RunSummary:
    """What a run did, in numbers whose names are fixed by the command (never ids or keys)."""

    command: str
    ok: bool
    seconds: float
    finished: float = field(default_factory=time.time)
    items: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _registry(summary: RunSummary) -> Any:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    class _Collector:
        def collect(self) -> Any:
            yield GaugeMetricFamily(
                "s3w_run_success",
                "1 when the run finished without failures, else 0.",
                value=1 if summary.ok else 0,
            )
            yield GaugeMetricFamily(
                "s3w_run_timestamp_seconds", "When the run finished.", value=summary.finished
            )
            yield GaugeMetricFamily(
                "s3w_run_duration_seconds", "How long the run took.", value=summary.seconds
            )
            items = GaugeMetricFamily("s3w_run_items", "Items by result.", labels=["result"])
            for name, count in sorted(summary.items.items()):
                items.add_metric([name], count)
            yield items
            size = GaugeMetricFamily("s3w_run_bytes", "Bytes by result.", labels=["result"])
            for name, count in sorted(summary.bytes.items()):
                size.add_metric([name], count)
            yield size

    registry = CollectorRegistry()
    registry.register(_Collector())
    return registry


def exposition(summary: RunSummary) -> bytes:
    """The summary in Prometheus's text format (what :func:`push` sends)."""
    from prometheus_client import generate_latest

    return generate_latest(_registry(summary))


def push(summary: RunSummary, url: str, deployment: str) -> None:
    """PUT the summary to the Pushgateway at ``url`` (replacing the group's earlier push);
    a ``user:password@`` in the URL is sent as basic authentication."""
    from urllib.parse import urlsplit, urlunsplit

    from prometheus_client import push_to_gateway
    from prometheus_client.exposition import basic_auth_handler, default_handler

    parts = urlsplit(url)
    handler: Any = default_handler
    if parts.username is not None:
        user, password = parts.username, parts.password or ""
        url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))

        def handler(url: str, method: str, timeout: float | None, headers: Any, data: bytes) -> Any:
            return basic_auth_handler(url, method, timeout, headers, data, user, password)

    push_to_gateway(
        url,
        job=f"s3w_{summary.command}",
        registry=_registry(summary),
        grouping_key={"deployment": deployment},
        timeout=TIMEOUT,
        handler=handler,
    )


def last_run_key(deployment: str, command: str) -> str:
    return f"s3w:lastrun:{deployment}:{command}"


def record(summary: RunSummary, deployment: str, client: Any = None) -> None:
    """Keep the summary as the command's last run (for ``s3w status``)."""
    from s3w_tasks.fleet.runs import connect

    client = client or connect()
    client.set(
        last_run_key(deployment, summary.command),
        json.dumps(summary.to_dict(), separators=(",", ":")),
        ex=KEEP,
    )


def last_runs(commands: tuple[str, ...], deployment: str, client: Any) -> dict[str, Any]:
    """Command -> its last run's summary (a dict), or None."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.get(last_run_key(deployment, command))
    found: dict[str, Any] = {}
    for command, raw in zip(commands, pipe.execute(), strict=True):
        try:
            found[command] = json.loads(raw) if raw else None
        except ValueError:
            found[command] = None
    return found


def publish(summary: RunSummary) -> list[str]:
    """Record the summary and push it when ``S3W_PUSHGATEWAY_URL`` is set. Returns one line
    per problem (the run itself is not failed by them; the caller prints them)."""
    if summary.dry_run or not has_destination(os.environ):
        return []  # before the worker's settings (and SQLAlchemy, Redis) are imported
    import redis

    from s3w_tasks import contract
    from s3w_tasks.errors import TaskError, describe
    from s3w_tasks.settings import get_settings

    problems: list[str] = []
    try:
        settings = get_settings()
        deployment = contract.s3_queue()
    except TaskError as exc:
        return [f"run summary not published: {describe(exc)}"]
    # Kept where the workers' Redis is: only when the environment names one (a bare
    # ``s3w sync`` on a laptop writes nowhere).
    named = {"redis_url", "broker_url_override", "progress_redis_url"} & settings.model_fields_set
    if named:
        try:
            client = _quick_client(settings)
            try:
                record(summary, deployment, client)
            finally:
                client.close()
        except (redis.RedisError, OSError, TaskError) as exc:
            problems.append(f"last run not recorded for s3w status: {describe(exc)}")
    if settings.pushgateway_url is not None:
        url = settings.pushgateway_url.get_secret_value()
        try:
            push(summary, url, deployment)
        except OSError as exc:
            problems.append(f"summary not pushed to S3W_PUSHGATEWAY_URL: {_reason(exc)}")
    return problems


def has_destination(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` names a place for the summary (names as the settings read them,
    in any case)."""
    return any(name.upper() in DESTINATIONS for name in environ)


def _quick_client(settings: Any) -> Any:
    import redis

    return redis.Redis.from_url(settings.progress_url, socket_timeout=3, socket_connect_timeout=3)


def _reason(exc: OSError) -> str:
    """The error without the URL (it may carry a password)."""
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return exc.strerror or type(exc).__name__
