"""Secrets never leak; presigned URL expiry and plain-http endpoints are bounded.

Scenario: every ``s3w`` command, and a worker running the tasks, with known secret values:
the S3 secret key, a password in ``PM_DB_URL`` and a password on the Redis broker
(``requirepass``). Commands run both with the right secret and with a wrong S3 secret (a
known value too) so error paths are covered, with ``-v`` tracebacks on failures. None of the
secret values may appear in stdout, stderr, the worker's log (task results and exception
messages included), its JSON log lines (``PM_LOG_FORMAT=json``) or its metrics endpoint.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from tests.support import papermerge as pm
from tests.support.celery_worker import ROOT
from tests.support.results import record
from tests.support.servers import RestartableRedis
from tests.support.services import find_binary, free_ports
from tests.support.stack import Stack, bulk_documents, pdf_bytes

DB_SECRET = "db-pw-" + uuid.uuid4().hex
REDIS_SECRET = "redis-pw-" + uuid.uuid4().hex
WRONG_S3_SECRET = "wrong-s3-secret-" + uuid.uuid4().hex
#: A customer key (SSE-C): every object is written and read with it, so it is in every request.
SSE_C_KEY = base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` for its user (the test server trusts; the value still flows)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@pytest.fixture
def secret_redis() -> Iterator[RestartableRedis]:
    server = RestartableRedis(persistent=False, password=REDIS_SECRET)
    server.start()
    try:
        yield server
    finally:
        server.kill()
        server.stop()


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


def test_no_secret_in_any_command_or_worker_output(
    make_stack: Callable[..., Stack], secret_redis: RestartableRedis, tmp_path: Path
) -> None:
    st = make_stack(broker_url=secret_redis.url + "/0", extra_env={"PM_S3_SSE_C_KEY": SSE_C_KEY})
    st.db_url = with_password(st.db_url, DB_SECRET)
    secrets = [st.s3.secret_key, DB_SECRET, REDIS_SECRET, WRONG_S3_SECRET, SSE_C_KEY]
    user = pm.insert_user(st.db_url)
    rows = bulk_documents(st.db_url, user, ["secret-a.pdf", "secret-b.pdf"])
    for row in rows:
        st.write_media(row, pdf_bytes(1))
    (missing,) = bulk_documents(st.db_url, user, ["not-on-disk.pdf"])
    sample = tmp_path / "sample.pdf"
    sample.write_bytes(pdf_bytes(1))
    target_env = tmp_path / "target.env"
    target_env.write_text(
        f"PM_S3_BUCKET_NAME={st.bucket}\nAWS_SECRET_ACCESS_KEY={WRONG_S3_SECRET}\n"
    )
    v, d = str(rows[0].version_id), str(rows[0].doc_id)
    commands = [
        ["info"],
        ["info", "--check", "--json"],
        ["config"],
        ["doctor"],
        ["doctor", "--json"],
        ["status"],
        ["status", "--json"],
        ["sync", str(st.media_root), "--json", "--no-progress"],
        ["sync", str(st.media_root), "--dry-run"],
        ["upload", str(sample), "docvers/sample.pdf", "--json"],
        ["presigned-url", "docvers/sample.pdf"],
        ["presigned-url", "docvers/none.pdf"],
        ["add-doc-vers", v, str(missing.version_id), "not-a-uuid"],
        ["doc-thumbnail", d, "--json"],
        ["generate-doc-thumbnails", "--json"],
        ["generate-doc-thumbnails", "--distributed", "--json"],
        ["remove-doc-vers", v, "--json"],
        ["delete", "docvers/sample.pdf", "--json"],
        ["delete", "../outside"],
        ["worker", "--print-command"],
        ["migrate", "--to-bucket", st.bucket, "--to-prefix", "copy", "--dry-run"],
        ["migrate", "--to-env", str(target_env), "--to-prefix", "copy"],
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PM_", "S3W_"))}
    runs = []
    for wrong in (False, True):
        env = {**base, **st.env}
        if wrong:
            env["AWS_SECRET_ACCESS_KEY"] = WRONG_S3_SECRET
        for args in commands:
            argv = [find_binary("s3w"), *(["-v"] if wrong else []), *args]
            done = subprocess.run(
                argv, capture_output=True, env=env, cwd=ROOT, timeout=180, check=False
            )
            out = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
            runs.append((("wrong " if wrong else "") + " ".join(args), done.returncode, out))
    leaked = [(name, _leaks(out, secrets)) for name, _code, out in runs if _leaks(out, secrets)]
    # The commands did run: the right secret succeeds where it should, the wrong one fails.
    codes = {name: code for name, code, _out in runs}
    config = json.loads(next(out for name, _c, out in runs if name == "config"))

    # The worker, with the same secrets: tasks that succeed, and tasks that fail.
    st.start_worker(concurrency=1)
    tasks = [
        st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(r.version_id) for r in rows]),
        st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(missing.version_id), "bad-id"]),
        st.send("s3_worker_generate_doc_thumbnail", doc_id=str(rows[1].doc_id)),
        st.send("s3_worker_generate_doc_thumbnail", doc_id=str(uuid.uuid4())),
        st.send("s3_worker_remove_doc_vers", doc_ver_ids=[str(rows[1].version_id)]),
    ]
    outcomes = st.wait_for_outcomes(tasks, timeout=180)
    worker_log = st.workers[0].log()
    worker_leaks = _leaks(worker_log, secrets)

    # Again with JSON log lines and the metrics endpoint: every line parses, and neither the
    # lines nor a scrape holds a secret.
    st.workers[0].stop()
    port = free_ports(1)[0]
    st.extra_env.update(
        {
            "PM_LOG_FORMAT": "json",
            "S3W_METRICS_PORT": str(port),
            "PYTHONWARNINGS": "ignore::UserWarning",  # Celery's "running as root" warning
        }
    )
    json_worker = st.start_worker(concurrency=1, quiet=True)
    json_tasks = [
        st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(rows[0].version_id)]),
        st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(missing.version_id), "bad-id"]),
        st.send("s3_worker_generate_doc_thumbnail", doc_id=str(uuid.uuid4())),
    ]
    json_outcomes = json_worker.wait_for_outcomes(json_tasks, timeout=180)
    lines = [line for line in json_worker.log().splitlines() if line.strip()]
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            not_json.append(line)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        scraped = response.read().decode()
    worker_leaks += _leaks("\n".join(lines) + scraped, secrets)
    record(
        "Secrets: every s3w command (right and wrong S3 secret) and a worker",
        result=(
            f"{len(runs)} command runs, {len(tasks)} tasks "
            f"({sorted(outcomes.values())}); secret values found in output: "
            f"{len(leaked) + len(worker_leaks)}"
        ),
        figure=(
            "checked: S3 secret key, PM_DB_URL password, Redis requirepass, a wrong S3 secret, "
            "an SSE-C customer key"
        ),
        runs=len(runs),
    )
    assert leaked == [], leaked
    assert worker_leaks == []
    assert codes["info --check --json"] == 0
    assert codes["upload " + str(sample) + " docvers/sample.pdf --json"] == 0
    assert codes["wrong info --check --json"] != 0
    assert codes["wrong upload " + str(sample) + " docvers/sample.pdf --json"] != 0
    assert "ok" in outcomes.values()
    assert "failed" in outcomes.values()
    assert not_json == [], not_json[:5]
    assert len(lines) > 5
    assert sorted(json_outcomes.values()) == ["failed", "failed", "ok"], json_outcomes
    assert "s3w_task_runs_total" in scraped
    shown = json.dumps(config)
    assert "PM_DB_URL" in shown or "db_url" in shown, shown[:500]


# ---------------------------------------------------------------- presign and http


def test_presigned_expiry_bounds(storage_env: dict[str, str], s3: Any, bucket: str) -> None:
    from s3w_storage.errors import InvalidArgument
    from s3w_storage.objects import get_storage

    storage = get_storage()
    storage.upload_bytes(b"%PDF-1.4 p", "docvers/p.pdf")
    refused = []
    for seconds in (0, -1, 604_801, 10**9):
        with pytest.raises(InvalidArgument) as raised:
            storage.presigned_get_url("docvers/p.pdf", expires=seconds)
        refused.append(seconds)
        assert "604800" in str(raised.value), raised.value
        with pytest.raises(InvalidArgument):
            storage.presigned_put_url("docvers/p.pdf", expires=seconds)
    accepted = [storage.presigned_get_url("docvers/p.pdf", expires=s) for s in (1, 604_800)]
    assert "X-Amz-Expires=1&" in accepted[0] or "X-Amz-Expires=1" in accepted[0]
    assert "X-Amz-Expires=604800" in accepted[1]
    env = {**os.environ, **storage_env}
    cli = []
    for seconds in ("0", "604801", "604800"):
        done = subprocess.run(
            [find_binary("s3w"), "presigned-url", "docvers/p.pdf", "--expires", seconds],
            capture_output=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        cli.append(done.returncode)
    record(
        "Presigned URL expiry bounds",
        result=f"expiries {refused} refused (library); CLI --expires 0/604801/604800 -> exit {cli}",
        figure="allowed 1..604800 s (7 days, the SigV4 maximum)",
    )
    assert cli == [2, 2, 0] or (cli[:2] != [0, 0] and cli[2] == 0), cli


@pytest.mark.parametrize(
    ("endpoint", "allow", "accepted"),
    [
        ("http://s3.example.org", None, False),
        ("http://10.0.0.5:9000", None, False),
        ("http://s3.example.org", "true", True),
        ("http://127.0.0.1:8333", None, True),
        ("http://localhost:8333", None, True),
        ("http://[::1]:8333", None, True),
        ("https://s3.example.org", None, True),
    ],
)
def test_plain_http_endpoints(
    endpoint: str, allow: str | None, accepted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3w_storage.errors import ConfigError
    from s3w_storage.settings import load_settings

    monkeypatch.setenv("PM_S3_BUCKET_NAME", "bucket-b")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("PM_S3_ENDPOINT_URL", endpoint)
    if allow:
        monkeypatch.setenv("PM_S3_ALLOW_HTTP", allow)
    if accepted:
        assert load_settings().effective_endpoint == endpoint.rstrip("/")
    else:
        with pytest.raises(ConfigError, match="PM_S3_ALLOW_HTTP"):
            load_settings()
