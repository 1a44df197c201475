"""Logging for the worker: ``PM_LOG_CONFIG`` (YAML dictConfig) when it exists, else a default.

``PM_LOG_FORMAT=json`` gives either one the JSON lines of :mod:`s3w_tasks.jsonlog`.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from typing import Any

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
# Libraries that log request details (URLs, headers) at DEBUG/INFO: keep them at WARNING.
QUIET = ("botocore", "boto3", "s3transfer", "urllib3", "kombu", "amqp")


def configure_logging(config_path: str | None = None, level: str | None = None) -> str:
    """Configure logging once for the process; returns what was used (path or ``default``)."""
    from s3w_tasks.settings import get_settings

    settings = get_settings()
    path = config_path or settings.log_config
    if path and os.path.isfile(path):
        import yaml

        with open(path, encoding="utf-8") as handle:
            config: Any = yaml.safe_load(handle)
        if not isinstance(config, dict):
            raise ValueError(f"{path}: expected a logging dictConfig mapping")
        config.setdefault("version", 1)
        config.setdefault("disable_existing_loggers", False)
        logging.config.dictConfig(config)
        _format(settings.log_format)
        return path
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(DEFAULT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or settings.log_level).upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    _format(settings.log_format)
    return "default"


def _format(kind: str) -> None:
    if kind == "json":
        from s3w_tasks.jsonlog import use_json

        use_json()
