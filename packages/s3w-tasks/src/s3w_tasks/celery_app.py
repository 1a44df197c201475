"""The Celery application: ``celery -A s3w_tasks.celery_app worker`` (or ``s3worker.celery_app``).

Configuration is read from the environment when Celery first needs it (a lazy defaults
callback), not when this module is imported, so importing the app is cheap and tests can
set the environment first.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

app = Celery("s3worker")

#: The module that registers the contract's tasks (imported by the worker through ``include``).
TASK_MODULE = "s3w_tasks.tasks"


def celery_config() -> dict[str, Any]:
    """The worker's Celery settings, built from :func:`s3w_tasks.settings.get_settings`."""
    from kombu.entity import Exchange, Queue

    from s3w_tasks import contract
    from s3w_tasks.fleet.authority import fleet_modules
    from s3w_tasks.settings import get_settings

    settings = get_settings()
    queues = contract.default_queues()
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_heartbeat": 60,
        # Papermerge core sends JSON, protocol 2, kwargs only, and keeps no results.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_queues": [
            Queue(name, Exchange(name), routing_key=name)  # type: ignore[no-untyped-call]
            for name in queues
        ],
        "task_default_queue": contract.s3_queue(),
        "task_routes": {name: {"queue": contract.queue_for(name)} for name in contract.TASK_NAMES},
        # Delivery: acknowledge after the task ran; a lost worker puts the message back
        # (as a counted retry, so a task that keeps killing its worker ends as failed).
        "task_acks_late": True,
        "task_acks_on_failure_or_timeout": True,
        "task_reject_on_worker_lost": True,
        "task_retry_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_soft_time_limit": settings.soft_time_limit,
        "task_time_limit": settings.time_limit,
        "worker_send_task_events": False,
        "worker_hijack_root_logger": False,
        # The contract's tasks; s3w's own (fleet) tasks only on a worker that holds
        # S3W_FLEET_KEY, their queue consumed only when asked for (``s3w worker --fleet``).
        "include": [TASK_MODULE, *fleet_modules()],
    }
    if settings.concurrency:
        config["worker_concurrency"] = settings.concurrency
    if settings.max_tasks_per_child:
        config["worker_max_tasks_per_child"] = settings.max_tasks_per_child
    if settings.is_redis_broker:
        config["broker_transport_options"] = {
            "visibility_timeout": settings.visibility_timeout,
            # Sweep for messages of dead workers every interval (not every tenth interval).
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 5)),
            "unacked_restore_throttle": 1,
        }
    return config


app.add_defaults(celery_config)

# Connects the worker's signals: the failure record and per-process warm-up of the task
# runner, the metrics', the task statistics' and the JSON log lines' (they act only when
# enabled). None of these modules imports the app: the tasks find it through ``include``.
from s3w_tasks import jsonlog as _jsonlog  # noqa: E402, F401
from s3w_tasks import metrics as _metrics  # noqa: E402, F401
from s3w_tasks import running as _running  # noqa: E402, F401
from s3w_tasks import taskstats as _taskstats  # noqa: E402, F401
