"""Worker settings from the environment: read on first use, cached per process, clearable.

Storage settings (bucket, credentials, ``PM_PREFIX``, ``PM_MEDIA_ROOT``) live in
:mod:`s3w_storage.settings`; rendering sizes in :mod:`s3w_thumbs.settings`. This module holds
what only the worker needs: the broker, the database, queue names, limits and logging.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from s3w_tasks.errors import ConfigurationError

#: Shortest ``S3W_FLEET_KEY`` accepted (characters); ``openssl rand -hex 32`` gives 64.
MIN_KEY_LENGTH = 32

DEFAULT_LOG_CONFIG = "/app/log_config.yaml"


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class TaskSettings(BaseSettings):
    """Every worker setting; the README's table lists the environment names."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, populate_by_name=True)

    # Papermerge core's names.
    db_url: SecretStr | None = Field(None, validation_alias=_env("PM_DB_URL"))
    redis_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"), validation_alias=_env("PM_REDIS_URL")
    )
    broker_url_override: SecretStr | None = Field(
        None, validation_alias=_env("S3W_BROKER_URL", "CELERY_BROKER_URL")
    )
    prefix: str = Field("", validation_alias=_env("PM_PREFIX"))
    s3_queue_name: str | None = Field(None, validation_alias=_env("PM_S3_QUEUE_NAME"))
    s3_preview_queue_name: str | None = Field(
        None, validation_alias=_env("PM_S3_PREVIEW_QUEUE_NAME")
    )
    # Distributed sync: where shard tasks report progress (default: the broker, if Redis).
    progress_redis_url: SecretStr | None = Field(
        None, validation_alias=_env("S3W_PROGRESS_REDIS_URL")
    )
    # Fleet tasks (distributed sync): the signing key, their queue, how long a message holds.
    fleet_key: SecretStr | None = Field(None, validation_alias=_env("S3W_FLEET_KEY"))
    fleet_queue_name: str | None = Field(None, validation_alias=_env("S3W_FLEET_QUEUE_NAME"))
    fleet_message_ttl: int = Field(
        6 * 3600, ge=60, le=7 * 86_400, validation_alias=_env("S3W_FLEET_MESSAGE_TTL")
    )
    log_config: str = Field(DEFAULT_LOG_CONFIG, validation_alias=_env("PM_LOG_CONFIG"))
    log_level: str = Field("INFO", validation_alias=_env("PM_LOG_LEVEL", "S3W_LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("PM_LOG_FORMAT"))

    # Observability (docs/observability.md).
    metrics_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=_env("S3W_METRICS_PORT")
    )
    metrics_addr: str = Field("127.0.0.1", validation_alias=_env("S3W_METRICS_ADDR"))
    metrics_state: bool = Field(True, validation_alias=_env("S3W_METRICS_STATE"))
    metrics_state_timeout: float = Field(
        2.0, gt=0, le=60, validation_alias=_env("S3W_METRICS_STATE_TIMEOUT")
    )
    pushgateway_url: SecretStr | None = Field(None, validation_alias=_env("S3W_PUSHGATEWAY_URL"))

    # Delivery and retries.
    soft_time_limit: int = Field(
        600, ge=1, le=86_400, validation_alias=_env("S3W_TASK_SOFT_TIME_LIMIT")
    )
    time_limit: int = Field(660, ge=2, le=86_400, validation_alias=_env("S3W_TASK_TIME_LIMIT"))
    max_retries: int = Field(8, ge=0, le=100, validation_alias=_env("S3W_TASK_MAX_RETRIES"))
    retry_backoff: float = Field(2.0, gt=0, le=3600, validation_alias=_env("S3W_RETRY_BACKOFF"))
    retry_backoff_max: float = Field(
        300.0, gt=0, le=3600, validation_alias=_env("S3W_RETRY_BACKOFF_MAX")
    )
    worker_lost_retry_delay: float = Field(
        5.0, ge=0, le=3600, validation_alias=_env("S3W_WORKER_LOST_RETRY_DELAY")
    )
    max_deliveries: int = Field(3, ge=1, le=100, validation_alias=_env("S3W_TASK_MAX_DELIVERIES"))
    concurrency: int | None = Field(None, ge=1, le=256, validation_alias=_env("S3W_CONCURRENCY"))
    max_tasks_per_child: int | None = Field(
        None, ge=1, validation_alias=_env("S3W_MAX_TASKS_PER_CHILD")
    )
    visibility_timeout_setting: int | None = Field(
        None, ge=1, validation_alias=_env("S3W_VISIBILITY_TIMEOUT")
    )
    # Thumbnails.
    preview_pending_stale_after: int = Field(
        900, ge=1, validation_alias=_env("S3W_PREVIEW_PENDING_STALE_AFTER")
    )
    not_ready_retry_delay: float = Field(
        5.0, gt=0, le=3600, validation_alias=_env("S3W_NOT_READY_RETRY_DELAY")
    )

    @field_validator("fleet_key", mode="before")
    @classmethod
    def _fleet_key(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and len(value.strip()) < MIN_KEY_LENGTH:
            raise ValueError(
                f"S3W_FLEET_KEY must be at least {MIN_KEY_LENGTH} characters "
                "(e.g. openssl rand -hex 32)"
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("s3_queue_name", "s3_preview_queue_name", "fleet_queue_name", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty queue name cannot be consumed; treat ``PM_S3_QUEUE_NAME=`` as unset.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def broker_url(self) -> str:
        """``S3W_BROKER_URL`` when given, else ``PM_REDIS_URL`` (which may be an amqp:// URL)."""
        chosen = self.broker_url_override or self.redis_url
        return chosen.get_secret_value()

    @property
    def is_redis_broker(self) -> bool:
        return self.broker_url.startswith(("redis://", "rediss://", "redis+socket://"))

    @property
    def progress_url(self) -> str:
        """The Redis that distributed-sync shards report to: ``S3W_PROGRESS_REDIS_URL``, else
        the broker when it is Redis."""
        if self.progress_redis_url is not None:
            return self.progress_redis_url.get_secret_value()
        if self.is_redis_broker:
            return self.broker_url
        raise ConfigurationError(
            "distributed runs report progress through Redis; with a non-Redis broker set "
            "S3W_PROGRESS_REDIS_URL=redis://... on the coordinator and every worker"
        )

    @property
    def visibility_timeout(self) -> int:
        """Seconds before Redis hands an unacknowledged message to another worker.

        Longer than the hard time limit plus the longest retry delay, so a message is never
        delivered twice while its first delivery is still running or waiting for its retry.
        """
        if self.visibility_timeout_setting is not None:
            return self.visibility_timeout_setting
        return int(self.time_limit + self.retry_backoff_max + 300)

    def require_db_url(self) -> str:
        if self.db_url is None:
            raise ConfigurationError("PM_DB_URL is not set (the Papermerge PostgreSQL database)")
        return self.db_url.get_secret_value()


def load_settings() -> TaskSettings:
    """Read the environment now; one :class:`ConfigurationError` names every bad variable."""
    try:
        settings = TaskSettings()  # type: ignore[call-arg]  # fields come from the environment
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            lines.append(f"{field}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigurationError("invalid worker configuration:\n  " + "\n  ".join(lines)) from None
    if settings.soft_time_limit >= settings.time_limit:
        raise ConfigurationError(
            "S3W_TASK_SOFT_TIME_LIMIT must be lower than S3W_TASK_TIME_LIMIT "
            "(the soft limit lets a task record its failure before the hard limit kills it)"
        )
    return settings


@lru_cache(maxsize=1)
def get_settings() -> TaskSettings:
    """The process's settings, read on first call; ``cache_clear()`` resets."""
    return load_settings()
