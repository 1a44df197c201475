"""The wire contract and the delivery settings, checked on the app itself (no worker)."""

from __future__ import annotations

import importlib
import sys

import pytest
from tests.support.papermerge import QUEUES

CONTRACT = set(QUEUES)


def test_registered_tasks_equal_the_contract() -> None:
    from s3w_tasks import contract
    from s3w_tasks.celery_app import app
    from s3w_tasks.fleet.authority import TASK_NAMES as OWN_TASKS

    # The worker imports the app's ``include`` (the contract's tasks; s3w's own fleet tasks
    # only with S3W_FLEET_KEY) as it starts: do the same here.
    app.loader.import_default_modules()
    registered = {name for name in app.tasks if not name.startswith("celery.")}
    assert not OWN_TASKS & CONTRACT
    registered -= OWN_TASKS  # present only if this process imported the fleet module
    assert registered == CONTRACT, f"registered {sorted(registered)}, contract {sorted(CONTRACT)}"
    assert set(contract.TASK_NAMES) == CONTRACT
    assert {n: contract.TASK_QUEUES[n] for n in CONTRACT} == QUEUES


@pytest.mark.parametrize(
    ("key", "expected"),
    [(None, ["s3w_tasks.tasks"]), ("k" * 32, ["s3w_tasks.tasks", "s3w_tasks.fleet.shard_sync"])],
)
def test_fleet_tasks_are_included_only_with_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str | None, expected: list[str]
) -> None:
    from s3w_tasks.celery_app import celery_config
    from s3w_tasks.settings import get_settings

    if key is None:
        monkeypatch.delenv("S3W_FLEET_KEY", raising=False)
    else:
        monkeypatch.setenv("S3W_FLEET_KEY", key)
    get_settings.cache_clear()
    try:
        config = celery_config()
    finally:
        get_settings.cache_clear()
    assert config["include"] == expected
    # The fleet queue is never among the queues a worker started without -Q consumes.
    assert all(q.name != "s3fleet" for q in config["task_queues"])


def test_compat_module_is_the_same_app() -> None:
    from s3w_tasks.celery_app import app
    from s3worker.celery_app import app as compat

    assert compat is app


def test_importing_the_app_reads_no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3W_TASK_MAX_RETRIES", "not a number")
    for name in [m for m in sys.modules if m.startswith(("s3w_tasks", "s3worker"))]:
        monkeypatch.delitem(sys.modules, name)
    module = importlib.import_module("s3w_tasks.celery_app")
    from s3w_tasks.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="S3W_TASK_MAX_RETRIES"):
        _ = module.app.conf.broker_url


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["s3", "s3preview"]),
        ({"PM_PREFIX": "acme"}, ["acme_s3", "acme_s3preview"]),
        ({"PM_PREFIX": "acme", "PM_S3_QUEUE_NAME": "q1"}, ["q1", "acme_s3preview"]),
        ({"PM_S3_QUEUE_NAME": "a", "PM_S3_PREVIEW_QUEUE_NAME": "b"}, ["a", "b"]),
    ],
)
def test_default_queues_follow_the_core(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: list[str]
) -> None:
    from s3w_tasks import contract

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert contract.default_queues() == expected
    assert contract.queue_for("process_upload") == expected[0]
    assert contract.queue_for("s3_worker_generate_doc_thumbnail") == expected[1]


def test_delivery_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("PM_PREFIX", "acme")
    from s3w_tasks.celery_app import celery_config

    config = celery_config()
    assert config["broker_url"] == "redis://127.0.0.1:6379/3"
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["task_retry_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_connection_retry_on_startup"] is True
    assert config["task_soft_time_limit"] < config["task_time_limit"]
    visibility = config["broker_transport_options"]["visibility_timeout"]
    assert visibility > config["task_time_limit"] + 300  # longest task plus its retry delay
    assert [q.name for q in config["task_queues"]] == ["acme_s3", "acme_s3preview"]


def test_amqp_broker_has_no_redis_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_REDIS_URL", "amqp://guest:guest@127.0.0.1:5672//")
    from s3w_tasks.celery_app import celery_config

    config = celery_config()
    assert config["broker_url"].startswith("amqp://")
    assert "broker_transport_options" not in config


def test_backoff_grows_with_jitter_and_is_bounded() -> None:
    from s3w_tasks.running import backoff

    for retries in range(12):
        ceiling = min(60.0, 2.0 * 2**retries)
        delays = {backoff(retries, 2.0, 60.0) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (retries, delays)
        assert len(delays) > 1  # jitter


def test_lang_from_the_core_is_normalised() -> None:
    from s3w_tasks.worker.uploads import normalize_lang

    assert normalize_lang("DocumentLang.deu") == "deu"
    assert normalize_lang("eng") == "eng"
    assert normalize_lang("") is None
    assert normalize_lang(None) is None
