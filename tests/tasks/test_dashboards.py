"""docs/grafana/s3w.json and docs/prometheus/alerts.yaml: valid, importable, and every PromQL
expression names only metrics that exist (the worker's, the run summaries', Prometheus's
``up``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: Series Prometheus itself makes for every scrape target.
PROMETHEUS_OWN = {"up"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label matchers,
    ranges, strings, Grafana variables and numbers left out)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def test_the_name_parser_on_known_expressions() -> None:
    assert metric_names(
        "histogram_quantile(0.95, sum by (task, le) (rate(s3w_task_duration_seconds_bucket"
        '{job="x"}[$__rate_interval])))'
    ) == {"s3w_task_duration_seconds_bucket"}
    assert metric_names('sum(up{job="a"}) == 0 or absent(up{job="a"})') == {"up"}
    assert metric_names("max by (queue) (a_b) > 100 and deriv(c[15m]) > 1e3") == {"a_b", "c"}


@pytest.fixture(scope="module")
def known() -> set[str]:
    from s3w_tasks.metrics import sample_names
    from s3w_tasks.summary import RUN_SAMPLES

    return sample_names() | set(RUN_SAMPLES) | PROMETHEUS_OWN


def _panel_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


def test_dashboard_is_importable_json_naming_existing_metrics(known: set[str]) -> None:
    dashboard = json.loads((DOCS / "grafana" / "s3w.json").read_text())
    assert dashboard["uid"] == "s3w-worker"
    assert [i["type"] for i in dashboard["__inputs"]] == ["datasource"]
    exprs = _panel_exprs(dashboard)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used: set[str] = set()
    unknown = []
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        unknown += [(title, n) for n in sorted(names - known)]
        used |= names
    assert unknown == []
    worker_metrics = {
        "s3w_task_runs_total",
        "s3w_task_duration_seconds_bucket",
        "s3w_s3_requests_total",
        "s3w_s3_bytes_total",
        "s3w_render_seconds_bucket",
        "s3w_render_pixels_total",
        "s3w_queue_depth",
        "s3w_documents",
    }
    assert worker_metrics <= used, worker_metrics - used


def test_alert_rules_are_valid_yaml_naming_existing_metrics(known: set[str]) -> None:
    import yaml

    rules = yaml.safe_load((DOCS / "prometheus" / "alerts.yaml").read_text())
    alerts = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}
    assert {
        "S3WTasksFailing",
        "S3WThumbnailsStuck",
        "S3WQueueGrowing",
        "S3WNoWorkerOnline",
    } <= set(alerts)
    unknown = []
    for name, rule in alerts.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        names = metric_names(rule["expr"])
        assert names, f"{name}: no metric in {rule['expr']!r}"
        unknown += [(name, n) for n in sorted(names - known)]
    assert unknown == []
