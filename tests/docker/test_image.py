"""The built image, run as a container against real PostgreSQL, Redis and SeaweedFS.

`nox -s image` builds docker/Dockerfile with podman and runs this module with S3W_IMAGE set
to the tag. One container serves the whole module, started as a production one would be: the
image's own entrypoint and command, a read-only root filesystem with a tmpfs at /tmp, the
media folder as a volume, settings from an env file. Tasks are sent as Papermerge core sends
them (by name, kwargs only, to the s3 and s3preview queues) and the results are read back from
the bucket and the database. The container's log is printed when the module ends.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from tests.support import papermerge as pm
from tests.support.services import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import S3Service

IMAGE = os.environ.get("S3W_IMAGE", "")
PODMAN = shlex.split(os.environ.get("S3W_PODMAN", "podman"))
RUN_FLAGS = shlex.split(os.environ.get("S3W_PODMAN_RUN", ""))
UID = 10001
# Many pages at four widths: a task that is still running when the stop signal arrives.
LONG_TASK_PAGES = 100

pytestmark = pytest.mark.skipif(not IMAGE, reason="needs the image that `nox -s image` builds")

_OUTCOME = re.compile(r"task=\S+ id=(\S+) .*?outcome=(ok|failed)\b")


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def run_once(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`podman run --rm IMAGE ARGS` with no network: what needs no server."""
    settings = [arg for name, value in (env or {}).items() for arg in ("--env", f"{name}={value}")]
    return podman(
        "run",
        "--rm",
        "--network",
        "none",
        "--health-interval",
        "disable",
        *RUN_FLAGS,
        *settings,
        IMAGE,
        *args,
    )


def put_media(media: Path, version: pm.Version, data: bytes) -> None:
    """The version's file in the media folder, as the core writes it; its folders open to the
    container's user as on a volume both images share."""
    path = pm.media_file(media, version, data)
    for folder in path.relative_to(media).parents:
        (media / folder).chmod(0o777)


def pdf_bytes(pages: int, text: str = "s3w image") -> bytes:
    from fpdf import FPDF

    doc = FPDF(format="A4")
    doc.set_font("helvetica", size=24)
    for number in range(1, pages + 1):
        doc.add_page()
        doc.set_fill_color(30 + number % 200, 90, 160)
        doc.rect(10, 200, 190, 80, style="F")
        doc.cell(text=f"{text} page {number}")
    return bytes(doc.output())


@dataclass
class Container:
    name: str
    hostname: str
    db_url: str
    bucket: str
    prefix: str
    media: Path
    sender: Any
    s3: Any
    started_at: float
    ready_after: float = 0.0

    def logs(self) -> str:
        """stdout and stderr in the order the container wrote them."""
        result = subprocess.run(
            [*PODMAN, "logs", self.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout

    def exec(self, *args: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *args)

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK, run by the engine as it would on its interval."""
        return podman("healthcheck", "run", self.name, timeout=60)

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name).stdout.strip()
        return state == "true"

    def send(self, name: str, queue: str, **kwargs: Any) -> str:
        """A task sent as the core sends it: by name, kwargs only, to a named queue."""
        result = self.sender.send_task(name, kwargs=kwargs, queue=f"{self.prefix}_{queue}")
        return str(result.id)

    def outcome(self, task_id: str, *, timeout: float = 120) -> str:
        found: dict[str, str] = {}

        def done() -> bool:
            if not self.running():
                raise AssertionError(f"the container stopped:\n{self.logs()[-4000:]}")
            found.update(dict(_OUTCOME.findall(self.logs())))
            return task_id in found

        wait_until(done, timeout=timeout, what=f"task {task_id}", interval=0.5)
        return found[task_id]


@pytest.fixture(scope="module")
def container(
    tmp_path_factory: pytest.TempPathFactory,
    s3_service: S3Service,
    pg_server_url: str,
    redis_server_url: str,
) -> Iterator[Container]:
    import psycopg2

    # A database, a bucket and queue names of the module's own: the servers are shared.
    db_name = f"s3w_image_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(pg_server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db_name}"')
    db_url = urlunsplit(urlsplit(pg_server_url)._replace(path=f"/{db_name}"))
    pm.create_schema(db_url)
    s3 = s3_service.client()
    bucket = f"image-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)

    work = tmp_path_factory.mktemp("image")
    media = work / "media"
    media.mkdir()
    media.chmod(0o777)  # the container's user (uid 10001) writes here, as on a shared volume
    prefix = f"img{uuid.uuid4().hex[:10]}"
    env_file = work / "worker.env"
    env_file.write_text(
        "\n".join(
            [
                "STORAGE_BACKEND=aws",
                f"AWS_ACCESS_KEY_ID={s3_service.access_key}",
                f"AWS_SECRET_ACCESS_KEY={s3_service.secret_key}",
                f"AWS_REGION_NAME={s3_service.region}",
                f"PM_S3_ENDPOINT_URL={s3_service.endpoint}",
                f"PM_S3_BUCKET_NAME={bucket}",
                f"PM_DB_URL={db_url}",
                # A database number of its own; the queue names are unique through PM_PREFIX.
                f"PM_REDIS_URL={redis_server_url}/12",
                f"PM_PREFIX={prefix}",
            ]
        )
        + "\n"
    )
    env_file.chmod(0o600)
    name = f"s3w-image-{uuid.uuid4().hex[:8]}"
    hostname = f"s3w-{uuid.uuid4().hex[:8]}"
    started_at = time.monotonic()
    result = podman(
        "run",
        "--detach",
        "--name",
        name,
        # The host's loopback servers; a hostname of its own names the worker's Celery node.
        "--network",
        "host",
        "--hostname",
        hostname,
        "--read-only",
        "--tmpfs",
        "/tmp:rw,mode=1777,size=256m",
        "--env-file",
        str(env_file),
        "--volume",
        f"{media}:/core_app/media",
        # The engine's timer is not needed: the test runs the healthcheck itself.
        "--health-interval",
        "disable",
        *RUN_FLAGS,
        IMAGE,
    )
    assert result.returncode == 0, result.stderr
    sender = pm.core_app(f"{redis_server_url}/12")
    box = Container(name, hostname, db_url, bucket, prefix, media, sender, s3, started_at)

    def ready() -> bool:
        if not box.running():
            raise AssertionError(f"the container exited:\n{box.logs()}")
        return f"celery@{hostname} ready." in box.logs()

    try:
        wait_until(ready, timeout=180, what="the worker's ready line", interval=0.1)
        box.ready_after = time.monotonic() - started_at
        yield box
    finally:
        sender.close()
        logs = box.logs()
        podman("rm", "--force", "--time", "5", name)
        print(f"\n----- container {name} ({IMAGE}) output -----\n{logs}----- end -----")
        pm_objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        if pm_objects:
            s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": o["Key"]} for o in pm_objects], "Quiet": True},
            )
        s3.delete_bucket(Bucket=bucket)
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()


def test_healthcheck_passes_once_the_worker_answers(container: Container) -> None:
    def healthy() -> bool:
        if not container.running():
            raise AssertionError(f"the container exited:\n{container.logs()}")
        return container.healthcheck().returncode == 0

    wait_until(healthy, timeout=180, what="the container's healthcheck", interval=0.5)
    healthy_after = time.monotonic() - container.started_at
    logs = container.logs()
    print(
        f"\nstart-up: worker ready {container.ready_after:.1f} s after podman run,"
        f" healthcheck passed after {healthy_after:.1f} s"
    )
    assert f"starting the Celery worker on queues {container.prefix}_s3," in logs, logs
    assert f"celery@{container.hostname} ready" in logs, logs
    state = podman("inspect", "--format", "{{.State.Health.Status}}", container.name)
    assert state.stdout.strip() == "healthy", state


def test_the_worker_runs_as_uid_10001_on_a_read_only_root(container: Container) -> None:
    # PID 1 is the worker itself (the entrypoint exec'd), not a shell.
    status = container.exec("cat", "/proc/1/status").stdout
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M)
    assert uids, status
    assert (int(uids[1]), int(uids[2])) == (UID, UID)
    cmdline = container.exec("cat", "/proc/1/cmdline").stdout.replace("\0", " ")
    assert "celery" in cmdline, cmdline
    assert " worker " in f"{cmdline} ", cmdline
    for path in ("/opt/s3w/probe", "/app/probe", "/probe"):
        denied = container.exec("sh", "-c", f": > {path}")
        assert denied.returncode != 0, f"{path} is writable"
    assert "Read-only file system" in container.exec("sh", "-c", ": > /app/probe").stderr
    assert container.exec("sh", "-c", ": > /tmp/probe && rm /tmp/probe").returncode == 0


def test_core_tasks_upload_render_and_update_rows(container: Container) -> None:
    db, prefix, s3, bucket = container.db_url, container.prefix, container.s3, container.bucket
    user = pm.insert_user(db)
    doc = pm.insert_document(db, user, file_name="invoice.pdf", page_count=2)
    data = pdf_bytes(2)
    put_media(container.media, doc.version, data)

    # The core sends the upload first; the previews after it (a new version resets them).
    uploaded = container.send("s3_worker_add_doc_vers", "s3", doc_ver_ids=[str(doc.version.id)])
    assert container.outcome(uploaded) == "ok", container.logs()[-4000:]
    rendered = [
        container.send("s3_worker_generate_doc_thumbnail", "s3preview", doc_id=str(doc.id)),
        container.send(
            "s3_worker_generate_page_image",
            "s3preview",
            page_ids=[str(p) for p in doc.version.page_ids],
        ),
    ]
    assert [container.outcome(t) for t in rendered] == ["ok", "ok"], container.logs()[-4000:]

    stored = s3.get_object(Bucket=bucket, Key=pm.docver_key(doc.version.id, "invoice.pdf", prefix))
    assert stored["Body"].read() == data
    thumb = s3.get_object(Bucket=bucket, Key=pm.thumbnail_key(doc.id, prefix))["Body"].read()
    from PIL import Image

    with Image.open(io.BytesIO(thumb)) as img:
        assert (img.format, img.width) == ("JPEG", 100)
    widths = {"sm": 200, "md": 600, "lg": 900, "xl": 1600}
    for page_id in doc.version.page_ids:
        for size, width in widths.items():
            key = pm.page_preview_key(page_id, size, prefix)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            with Image.open(io.BytesIO(body)) as img:
                assert (img.format, img.width) == ("JPEG", width), key
    assert pm.document_row(db, doc.id)["preview_status"] == "ready"


def test_process_upload_fills_in_the_version_and_its_pages(container: Container) -> None:
    db, prefix, s3, bucket = container.db_url, container.prefix, container.s3, container.bucket
    user = pm.insert_user(db)
    # As after an upload in the core: the file is in the bucket, version 1 has no pages yet.
    doc = pm.insert_document(
        db, user, file_name="scan.pdf", page_count=0, processing_status="uploaded"
    )
    data = pdf_bytes(3)
    s3.put_object(Bucket=bucket, Key=pm.docver_key(doc.version.id, "scan.pdf", prefix), Body=data)

    task_id = container.send(
        "process_upload",
        "s3",
        document_id=str(doc.id),
        document_version_id=str(doc.version.id),
        lang="deu",
        user_id=str(user),
    )
    assert container.outcome(task_id) == "ok", container.logs()[-4000:]

    row = pm.document_row(db, doc.id)
    assert (row["processing_status"], row["processing_error"]) == ("ready", None)
    (version,) = pm.versions(db, doc.id)
    assert (version["size"], version["page_count"]) == (len(data), 3)
    pages = pm.pages(db, version["id"])
    assert [(p["number"], p["page_count"], p["lang"]) for p in pages] == [
        (n, 3, "deu") for n in (1, 2, 3)
    ]
    # The worker fetched the file into the media volume, as the core's image expects.
    local = container.media / pm.docver_key(doc.version.id, "scan.pdf")
    assert local.read_bytes() == data
    assert local.stat().st_uid == UID


def test_sigterm_lets_the_running_task_finish_and_exits_0(container: Container) -> None:
    db, prefix, s3, bucket = container.db_url, container.prefix, container.s3, container.bucket
    user = pm.insert_user(db)
    doc = pm.insert_document(db, user, file_name="long.pdf", page_count=LONG_TASK_PAGES)
    put_media(container.media, doc.version, pdf_bytes(LONG_TASK_PAGES))
    task_id = container.send(
        "s3_worker_generate_page_image",
        "s3preview",
        page_ids=[str(p) for p in doc.version.page_ids],
    )
    wait_until(
        lambda: f"[{task_id}] received" in container.logs(),
        timeout=60,
        what="the long task's receipt",
        interval=0.1,
    )

    # What `docker stop` does: the image's STOPSIGNAL (SIGTERM), SIGKILL only after the grace.
    stopped = podman("stop", "--time", "300", container.name, timeout=330)
    assert stopped.returncode == 0, stopped.stderr
    code = podman("inspect", "--format", "{{.State.ExitCode}}", container.name).stdout.strip()
    logs = container.logs()
    assert code == "0", logs[-4000:]

    shutdown = logs.lower().find("warm shutdown")
    finished = re.search(rf"id={re.escape(task_id)} .*?outcome=ok", logs)
    assert shutdown != -1, logs[-4000:]
    assert finished, logs[-4000:]
    # The signal came while the task ran, and the task still completed.
    assert shutdown < finished.start(), logs[-4000:]
    for page_id in doc.version.page_ids:
        for size in ("sm", "md", "lg", "xl"):
            s3.head_object(Bucket=bucket, Key=pm.page_preview_key(page_id, size, prefix))
    assert container.healthcheck().returncode != 0  # nothing answers any more


@pytest.mark.parametrize(
    ("env", "queues"),
    [
        ({"PM_PREFIX": "pm"}, "pm_s3,pm_s3preview"),
        ({"PM_PREFIX": "pm", "NODE_NAME": "node-a"}, "s3_pm_node-a,s3preview_pm_node-a"),
        ({"PM_S3_QUEUE_NAME": "mine", "NODE_NAME": "node-a"}, "mine,s3preview__node-a"),
    ],
)
def test_the_entrypoint_names_the_queues_as_the_earlier_image(
    env: dict[str, str], queues: str
) -> None:
    # `worker --help`: the entrypoint picks the queues, Celery prints its help and exits.
    result = run_once("worker", "--help", env=env)
    assert result.returncode == 0, result.stderr
    assert f"starting the Celery worker on queues {queues}\n" in result.stderr, result.stderr
    assert "--queues" in result.stdout


def test_other_commands_run_as_given() -> None:
    result = run_once("s3w", "--version")
    assert (result.returncode, result.stdout.strip()) == (0, "s3w 0.1.0"), result.stderr
