"""Prometheus metrics of the worker, counted in every pool process and served by the main one.

With ``S3W_METRICS_PORT`` set, the worker's main process prepares a multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``: the given one emptied, else a fresh temporary one) before the
pool forks; every process then counts into its own files there, and an HTTP server in the main
process (``S3W_METRICS_ADDR``, default 127.0.0.1) sums them on each scrape. Counting is done by
Celery signals and by the storage and rendering observers, so no task knows about metrics.
Without the port nothing is counted and ``prometheus_client`` is never imported.

The names and labels are listed in docs/observability.md; every label value comes from a
fixed set (task names the worker registered, S3 API names, HTTP status codes, queue names of
the settings), never from an id or a key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_rejected,
    task_retry,
    task_success,
    task_unknown,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

log = logging.getLogger("s3w_tasks.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Task duration buckets (seconds): deletes take milliseconds, large uploads minutes.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
RENDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The label value for a task name the worker did not register (a message from elsewhere).
UNKNOWN_TASK = "unknown"
OUTCOMES = ("ok", "retried", "failed", "rejected")


@dataclass
class Metrics:
    """The metric objects, created once per process after the multiprocess directory is set."""

    task_runs: Any
    task_duration: Any
    s3_requests: Any
    s3_bytes: Any
    render_seconds: Any
    render_pixels: Any


_lock = threading.Lock()
_metrics: Metrics | None = None
_state: dict[str, Any] = {"enabled": False, "own_dir": None, "server": None}
_started: dict[str, float] = {}


def definitions() -> Metrics:
    """The metric objects (built on first call; not registered in the default registry)."""
    global _metrics
    with _lock:
        if _metrics is None:
            from prometheus_client import Counter, Histogram

            _metrics = Metrics(
                task_runs=Counter(
                    "s3w_task_runs",
                    "Task executions by outcome (ok, retained, retried, failed, rejected).",
                    ["task", "outcome"],
                    registry=None,
                ),
                task_duration=Histogram(
                    "s3w_task_duration_seconds",
                    "Seconds one execution of a task took (every outcome).",
                    ["task"],
                    buckets=DURATION_BUCKETS,
                    registry=None,
                ),
                s3_requests=Counter(
                    "s3w_s3_requests",
                    "S3 HTTP requests (each attempt) by API operation and HTTP status "
                    "('error': no response).",
                    ["operation", "status"],
                    registry=None,
                ),
                s3_bytes=Counter(
                    "s3w_s3_bytes",
                    "Object bytes sent (up: PutObject, UploadPart) and received (down: GetObject).",
                    ["direction"],
                    registry=None,
                ),
                render_seconds=Histogram(
                    "s3w_render_seconds",
                    "Seconds to draw and encode one page at every requested width.",
                    ["kind", "renderer"],
                    buckets=RENDER_BUCKETS,
                    registry=None,
                ),
                render_pixels=Counter(
                    "s3w_render_pixels",
                    "Pixels of the JPEG thumbnails and previews rendered.",
                    registry=None,
                ),
            )
        return _metrics


def enabled() -> bool:
    return bool(_state["enabled"])


# ---------------------------------------------------------------------------- counting


def task_label(task: Any) -> str:
    """The task's name when this worker registered it, else ``unknown``."""
    name = getattr(task, "name", None)
    registered = getattr(getattr(task, "app", None), "tasks", {})
    return name if isinstance(name, str) and name in registered else UNKNOWN_TASK


def count_run(task: Any, outcome: str) -> None:
    definitions().task_runs.labels(task_label(task), outcome).inc()


def count_request(operation: str, status: int | None, sent: int, received: int) -> None:
    """The storage observer (:mod:`s3w_storage.observe`)."""
    found = definitions()
    found.s3_requests.labels(operation, "error" if status is None else str(status)).inc()
    if sent:
        found.s3_bytes.labels("up").inc(sent)
    if received:
        found.s3_bytes.labels("down").inc(received)


def count_render(kind: str, renderer: str, seconds: float, pixels: int) -> None:
    """The rendering observer (:mod:`s3w_thumbs.observe`)."""
    found = definitions()
    found.render_seconds.labels(kind, renderer).observe(seconds)
    found.render_pixels.inc(pixels)


def enable() -> None:
    """Count from now on in this process (and in the processes it forks)."""
    from s3w_storage import observe as storage_observe
    from s3w_thumbs import observe as thumbs_observe

    definitions()
    storage_observe.set_observer(count_request)
    thumbs_observe.set_observer(count_render)
    _state["enabled"] = True


def disable() -> None:
    from s3w_storage import observe as storage_observe
    from s3w_thumbs import observe as thumbs_observe

    storage_observe.set_observer(None)
    thumbs_observe.set_observer(None)
    _state["enabled"] = False


# ------------------------------------------------------------------- multiprocess files


def prepare_directory(given: str | None) -> tuple[str, bool]:
    """The multiprocess directory: ``given`` emptied of earlier runs' files, else a new
    temporary one. Returns (path, whether this worker created it)."""
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(given, name))
        return given, False
    return tempfile.mkdtemp(prefix="s3w-metrics-"), True


def use_directory(path: str) -> None:
    """Make ``prometheus_client`` count into files under ``path`` (also if already imported)."""
    os.environ[MULTIPROC_ENV] = path
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def registry() -> Any:
    """A registry that sums every process's files, with the main process's own metrics and,
    unless ``S3W_METRICS_STATE=false``, the queue depths and document counts."""
    from prometheus_client import CollectorRegistry, ProcessCollector
    from prometheus_client.multiprocess import MultiProcessCollector

    from s3w_tasks.settings import get_settings

    found = CollectorRegistry()
    MultiProcessCollector(found)  # type: ignore[no-untyped-call]
    ProcessCollector(registry=found)
    if get_settings().metrics_state:
        from s3w_tasks.state import StateCollector

        found.register(StateCollector())
    return found


def serve(port: int, addr: str) -> Any:
    """Start the HTTP server (a daemon thread) for the multiprocess registry."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=addr, registry=registry())


# ---------------------------------------------------------------------- Celery signals


@worker_init.connect  # type: ignore[untyped-decorator]
def _worker_init(**_: Any) -> None:
    """Main process, before the pool forks: the directory, then counting on."""
    from s3w_tasks.settings import get_settings

    if get_settings().metrics_port is None:
        return
    path, own = prepare_directory(os.environ.get(MULTIPROC_ENV))
    use_directory(path)
    _state["own_dir"] = path if own else None
    enable()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _worker_ready(**_: Any) -> None:
    """Main process, pool started: serve the metrics."""
    from s3w_tasks.settings import get_settings

    settings = get_settings()
    if not enabled() or settings.metrics_port is None:
        return
    try:
        _state["server"] = serve(settings.metrics_port, settings.metrics_addr)
    except OSError as exc:
        log.error(
            "metrics: cannot listen on %s:%d (S3W_METRICS_ADDR, S3W_METRICS_PORT): %s",
            settings.metrics_addr,
            settings.metrics_port,
            exc.strerror or exc,
        )
        return
    log.info("metrics: serving http://%s:%d/metrics", settings.metrics_addr, settings.metrics_port)


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _process_shutdown(pid: int | None = None, **_: Any) -> None:
    if enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _worker_shutdown(**_: Any) -> None:
    server = _state.get("server")
    if server is not None:
        with contextlib.suppress(Exception):  # the process is ending; the socket goes anyway
            server[0].shutdown()
    own = _state.get("own_dir")
    if own:
        shutil.rmtree(own, ignore_errors=True)


@task_prerun.connect  # type: ignore[untyped-decorator]
def _prerun(task_id: str | None = None, **_: Any) -> None:
    if _state["enabled"] and task_id:
        _started[task_id] = time.perf_counter()


@task_postrun.connect  # type: ignore[untyped-decorator]
def _postrun(task_id: str | None = None, sender: Any = None, **_: Any) -> None:
    if not _state["enabled"] or not task_id:
        return
    started = _started.pop(task_id, None)
    if started is not None:
        definitions().task_duration.labels(task_label(sender)).observe(
            time.perf_counter() - started
        )


@task_success.connect  # type: ignore[untyped-decorator]
def _success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if _state["enabled"]:
        from s3w_tasks.retention import outcome

        count_run(sender, outcome(result))  # "retained": locked versions were kept


@task_retry.connect  # type: ignore[untyped-decorator]
def _retry(sender: Any = None, **_: Any) -> None:
    if _state["enabled"]:
        count_run(sender, "retried")


@task_failure.connect  # type: ignore[untyped-decorator]
def _failure(sender: Any = None, **_: Any) -> None:
    if _state["enabled"]:
        count_run(sender, "failed")


@task_rejected.connect  # type: ignore[untyped-decorator]
def _rejected(**_: Any) -> None:
    if _state["enabled"]:
        definitions().task_runs.labels(UNKNOWN_TASK, "rejected").inc()


@task_unknown.connect  # type: ignore[untyped-decorator]
def _unknown(**_: Any) -> None:
    if _state["enabled"]:
        definitions().task_runs.labels(UNKNOWN_TASK, "rejected").inc()


# ----------------------------------------------------------------------------- names


def sample_names() -> set[str]:
    """Every sample name the worker's endpoint can show (for checking dashboards and alerts)."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    from s3w_tasks.state import STATE_FAMILIES

    names: set[str] = set()
    found = definitions()
    for metric in vars(found).values():
        for family in metric.describe():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    names.update(STATE_FAMILIES)
    process = CollectorRegistry()
    ProcessCollector(registry=process)
    for family in process.collect():
        names.update(sample.name for sample in family.samples)
    return names
