"""Hostile and bad input: each answered with a clear error while the rest of the batch completes.

One worker serves the module (its own database, bucket, media root and queues). A "batch" is
one task with many ids (the rest of its ids must be done) or many tasks sent together (the
other tasks must end ``ok``). The renderer's time limit is 3 s here
(``S3W_THUMBS_RENDER_TIMEOUT``) so a pathological PDF is stopped quickly.

Unreadable files: the tests run as root, which reads any file whatever its mode, so the
"unreadable" files are a FIFO and a directory at the path where the version's file belongs.
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.conftest import redis_db_url
from tests.support import papermerge as pm
from tests.support.results import record, size
from tests.support.stack import Row, Stack, bulk_documents, pdf_bytes, query, stack

ENV = {"S3W_THUMBS_RENDER_TIMEOUT": "3", "S3W_TASK_MAX_RETRIES": "2"}


@pytest.fixture(scope="module")
def hs(
    pg_server_url: str,
    s3_service: Any,
    redis_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    with stack(
        pg_server_url=pg_server_url,
        s3=s3_service,
        broker_url=redis_db_url(redis_server_url),
        tmp=tmp_path_factory.mktemp("hostile"),
        extra_env=ENV,
    ) as made:
        made.start_worker(concurrency=2)
        yield made


@pytest.fixture(scope="module")
def user(hs: Stack) -> uuid.UUID:
    return pm.insert_user(hs.db_url)


def _docs(hs: Stack, user: uuid.UUID, names: list[str], **kw: Any) -> list[Row]:
    return bulk_documents(hs.db_url, user, names, **kw)


def _run(hs: Stack, name: str, timeout: float = 180, **kwargs: Any) -> tuple[str, str]:
    """Send one task; return its outcome and its outcome line's tail (the error)."""
    task = hs.send(name, **kwargs)
    outcome = hs.wait_for_outcomes([task], timeout=timeout)[task]
    lines = [rest for _n, tid, out, rest in hs.log_lines() if tid == task and out == outcome]
    return outcome, lines[-1] if lines else ""


def _in_bucket(hs: Stack, row: Row) -> bool:
    client = hs.s3.client()
    key = hs.key(pm.docver_key(row.version_id, row.file_name))
    return client.list_objects_v2(Bucket=hs.bucket, Prefix=key).get("KeyCount", 0) == 1


# ------------------------------------------------------------------------------- ids


def test_malformed_and_unknown_ids_in_a_batch(hs: Stack, user: uuid.UUID) -> None:
    good = _docs(hs, user, ["ids-a.pdf", "ids-b.pdf"])
    for row in good:
        hs.write_media(row, b"%PDF-1.4 ids")
    unknown = str(uuid.uuid4())
    batch = [str(good[0].version_id), "not-a-uuid", unknown, "../etc", str(good[1].version_id)]
    outcome, line = _run(hs, "s3_worker_add_doc_vers", doc_ver_ids=batch)
    done = [_in_bucket(hs, r) for r in good]
    record(
        "Hostile: malformed and unknown ids in one add_doc_vers",
        result=f"task {outcome}; {sum(done)}/2 good versions uploaded",
        figure=f"error: {line.split('error=', 1)[-1][:200]}",
    )
    assert outcome == "failed"
    assert "'not-a-uuid' is not a valid document version id" in line, line
    assert "'../etc'" in line, line
    assert unknown in line, line
    assert done == [True, True], "the rest of the batch must still be uploaded"


def test_ten_thousand_ids_in_one_task(hs: Stack, user: uuid.UUID) -> None:
    count = size(10_000, 10_000)
    (good,) = _docs(hs, user, ["many-ids.pdf"])
    hs.write_media(good, b"%PDF-1.4 many")
    ids = [str(uuid.uuid4()) for _ in range(count - 1)] + [str(good.version_id)]
    outcome, line = _run(hs, "s3_worker_add_doc_vers", doc_ver_ids=ids)
    record(
        "Hostile: 10,000 ids in one add_doc_vers",
        result=f"task {outcome}; the one known version uploaded: {_in_bucket(hs, good)}",
        figure=f"error line {len(line)} chars: {line.split('error=', 1)[-1][:160]}",
    )
    assert outcome == "failed"
    assert f"({count - 1} in all)" in line, line[:300]
    assert len(line) < 2000, "the error must stay short"
    assert _in_bucket(hs, good)


# ------------------------------------------------------------------------ file names

NAMES = [
    "with space.pdf",
    "100%.pdf",
    "a+b.pdf",
    "#hash#.pdf",
    "Überweisung \u2013 naïve 文件.pdf",
    "x" * 251 + ".pdf",  # 255 bytes, the usual file-name limit
    "ü" * 125 + ".pdf",  # 254 bytes of UTF-8
]
TRAVERSAL = ["../../escape.pdf", "a/../../b.pdf", "..", "sub/dir.pdf", "/abs.pdf"]


def test_file_names(hs: Stack, user: uuid.UUID) -> None:
    fine = _docs(hs, user, NAMES)
    for row in fine:
        hs.write_media(row, row.file_name.encode())
    outcome, line = _run(
        hs, "s3_worker_add_doc_vers", doc_ver_ids=[str(r.version_id) for r in fine]
    )
    assert outcome == "ok", line
    client = hs.s3.client()
    for row in fine:
        key = hs.key(pm.docver_key(row.version_id, row.file_name))
        body = client.get_object(Bucket=hs.bucket, Key=key)["Body"].read()
        assert body == row.file_name.encode(), key

    bad = _docs(hs, user, TRAVERSAL)
    (good,) = _docs(hs, user, ["after-traversal.pdf"])
    hs.write_media(good, b"%PDF-1.4 good")
    outside = hs.media_root.parent / "escape.pdf"
    outside.write_bytes(b"must never be uploaded")
    ids = [str(r.version_id) for r in bad] + [str(good.version_id)]
    outcome2, line2 = _run(hs, "s3_worker_add_doc_vers", doc_ver_ids=ids)
    listed = hs.listing("docvers/")
    escaped = [k for k in listed if "escape" in k or k.endswith("/b.pdf")]
    record(
        "Hostile: file names (space % + # unicode 255 bytes) and .. / in file_name",
        result=(
            f"{len(NAMES)} odd names uploaded to their exact keys ({outcome}); traversal batch "
            f"{outcome2}, escaped keys {len(escaped)}, good version uploaded {_in_bucket(hs, good)}"
        ),
        figure=f"error: {line2.split('error=', 1)[-1][:200]}",
    )
    assert outcome2 == "failed"
    assert escaped == []
    # The log line keeps the first 500 characters of the error: the first ones are named.
    assert f"version {bad[0].version_id}: file name '../../escape.pdf'" in line2, line2[:600]
    assert "single safe path segment" in line2, line2[:600]
    assert _in_bucket(hs, good), "the rest of the batch must still be uploaded"


# ----------------------------------------------------------------------- odd files


def _fifo_and_dir(hs: Stack, rows: list[Row]) -> None:
    fifo_row, dir_row = rows
    fifo = hs.media_root / pm.docver_key(fifo_row.version_id, fifo_row.file_name)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    folder = hs.media_root / pm.docver_key(dir_row.version_id, dir_row.file_name)
    folder.mkdir(parents=True)


def test_zero_byte_fifo_directory_and_symlinks_in_add_doc_vers(hs: Stack, user: uuid.UUID) -> None:
    rows = _docs(hs, user, ["zero.pdf", "fifo.pdf", "dir.pdf", "loop.pdf", "link.pdf", "ok.pdf"])
    zero, _fifo, _dir, loop, link, ok = rows
    hs.write_media(zero, b"")
    _fifo_and_dir(hs, rows[1:3])
    loop_path = hs.media_root / pm.docver_key(loop.version_id, loop.file_name)
    loop_path.parent.mkdir(parents=True)
    loop_path.symlink_to(loop_path.name)  # points at itself: ELOOP
    target = hs.write_media(ok, b"%PDF-1.4 target")
    link_path = hs.media_root / pm.docver_key(link.version_id, link.file_name)
    link_path.parent.mkdir(parents=True)
    link_path.symlink_to(target)
    outcome, line = _run(
        hs, "s3_worker_add_doc_vers", doc_ver_ids=[str(r.version_id) for r in rows]
    )
    uploaded = {r.file_name: _in_bucket(hs, r) for r in rows}
    record(
        "Hostile: zero-byte file, FIFO, directory, symlink loop, symlink in add_doc_vers",
        result=f"task {outcome}; uploaded {uploaded}",
        figure=f"error: {line.split('error=', 1)[-1][:240]}",
    )
    assert outcome == "failed"
    assert uploaded == {
        "zero.pdf": True,
        "fifo.pdf": False,
        "dir.pdf": False,
        "loop.pdf": False,
        "link.pdf": False,  # links in the media root are never followed (docs/security.md)
        "ok.pdf": True,
    }
    assert f"version {rows[1].version_id}: " in line, line[:600]
    assert "is not a regular file" in line, line[:600]


# ------------------------------------------------------------------------ documents


def _slow_pdf(ops: int) -> bytes:
    """One page with ``ops`` filled rectangles: tiny compressed, seconds to render."""
    content = b"0.5 g\n" + b"".join(
        b"%d %d 3 3 re f\n" % (i % 590, (i // 590) % 840) for i in range(ops)
    )
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def _encrypted_pdf() -> bytes:
    from tests.support.corpus import encrypted_pdf

    return encrypted_pdf()


def test_bad_documents_in_thumbnails_and_process_upload(hs: Stack, user: uuid.UUID) -> None:
    files = {
        "empty.pdf": b"",
        "corrupt.pdf": b"%PDF-1.4\n" + os.urandom(4000),
        "encrypted.pdf": _encrypted_pdf(),
        "slow.pdf": _slow_pdf(5_000_000),
        "thousand.pdf": pdf_bytes(1000),
        "fine.pdf": pdf_bytes(2),
    }
    names = list(files)
    thumbs = _docs(hs, user, names)
    uploads = _docs(hs, user, names, page_count=0, processing_status="uploaded")
    for rows in (thumbs, uploads):
        for row in rows:
            hs.write_media(row, files[row.file_name])
    tasks = {}
    for row in thumbs:
        tasks[("thumbnail", row.file_name)] = hs.send(
            "s3_worker_generate_doc_thumbnail", doc_id=str(row.doc_id)
        )
    for row in uploads:
        tasks[("upload", row.file_name)] = hs.send(
            "process_upload",
            document_id=str(row.doc_id),
            document_version_id=str(row.version_id),
            lang="deu",
            user_id=str(user),
        )
    outcomes = hs.wait_for_outcomes(list(tasks.values()), timeout=600)
    preview = {
        r.file_name: pm.document_row(hs.db_url, r.doc_id) for r in thumbs
    }  # preview_status, preview_error
    processing = {r.file_name: pm.document_row(hs.db_url, r.doc_id) for r in uploads}
    pages = {
        r.file_name: query(
            hs.db_url,
            "SELECT count(*) FROM pages WHERE document_version_id = %s",
            (str(r.version_id),),
        )[0][0]
        for r in uploads
    }
    summary = "; ".join(
        f"{n}: thumb {preview[n]['preview_status']}, upload {processing[n]['processing_status']}"
        + (f" ({pages[n]} pages)" if pages[n] else "")
        for n in names
    )
    record(
        "Hostile: empty, corrupt, encrypted, slow (render limit), 1,000-page PDFs",
        result=summary,
        figure="; ".join(
            f"{n}: {(preview[n]['preview_error'] or '')[:90]}"
            for n in ("empty.pdf", "corrupt.pdf", "encrypted.pdf", "slow.pdf")
        ),
    )
    for name in ("empty.pdf", "corrupt.pdf", "encrypted.pdf", "slow.pdf"):
        assert outcomes[tasks[("thumbnail", name)]] == "failed"
        assert preview[name]["preview_status"] == "failed", preview[name]
        assert preview[name]["preview_error"], preview[name]
    for name in ("empty.pdf", "corrupt.pdf", "encrypted.pdf"):
        assert outcomes[tasks[("upload", name)]] == "failed"
        assert processing[name]["processing_status"] == "failed", processing[name]
        assert processing[name]["processing_error"], processing[name]
    assert "empty" in preview["empty.pdf"]["preview_error"]
    assert "password" in preview["encrypted.pdf"]["preview_error"]
    assert "S3W_THUMBS_RENDER_TIMEOUT" in preview["slow.pdf"]["preview_error"]
    for name in ("thousand.pdf", "fine.pdf"):
        assert outcomes[tasks[("thumbnail", name)]] == "ok"
        assert preview[name]["preview_status"] == "ready"
        assert outcomes[tasks[("upload", name)]] == "ok"
        assert processing[name]["processing_status"] == "ready"
    assert pages["thousand.pdf"] == 1000
    assert pages["fine.pdf"] == 2


# ---------------------------------------------------------------- media root, prefix


def test_sync_over_symlinks_loops_fifos_and_directories(hs: Stack, tmp_path: Path) -> None:
    import json
    import subprocess

    from tests.reliability.test_s3_outage import sync_env
    from tests.support.celery_worker import ROOT
    from tests.support.services import find_binary

    root = tmp_path / "media"
    (root / "docvers/aa/bb").mkdir(parents=True)
    (root / "docvers/aa/bb/good.pdf").write_bytes(b"%PDF-1.4 good")
    (root / "docvers/aa/bb/empty.pdf").write_bytes(b"")
    (root / "docvers/aa/bb/loop").symlink_to("loop")
    (root / "docvers/aa/bb/dangling.pdf").symlink_to(tmp_path / "nowhere")
    (root / "docvers/aa/outside").symlink_to("/etc")
    (root / "docvers/aa/up").symlink_to("..")
    os.mkfifo(root / "docvers/aa/bb/fifo.pdf")
    prefix = f"{hs.prefix}-symlinks"
    done = subprocess.run(
        [find_binary("s3w"), "sync", str(root), "--json", "--no-progress"],
        capture_output=True,
        env=sync_env(hs, prefix),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    text = done.stdout.decode()
    result = json.loads(text[text.index("{") :])
    keys = sorted(k.removeprefix(prefix + "/") for k in _keys(hs, prefix + "/"))
    record(
        "Hostile: s3w sync over symlinks, symlink loops, a FIFO and links out of the root",
        result=f"exit {done.returncode}; uploaded {keys}",
        figure=(
            f"skipped links {result['skipped_links']}, special files {result['skipped_special']}"
        ),
    )
    assert done.returncode == 0, done.stderr.decode()[-1000:]
    assert keys == ["docvers/aa/bb/empty.pdf", "docvers/aa/bb/good.pdf"]
    assert result["skipped_links"] == 4
    assert result["skipped_special"] == 1


def _keys(hs: Stack, prefix: str) -> list[str]:
    client = hs.s3.client()
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=hs.bucket, Prefix=prefix):
        found += [o["Key"] for o in page.get("Contents", [])]
    return found


def test_keys_outside_the_prefix_are_refused(
    storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, s3: Any, bucket: str
) -> None:
    from s3w_storage.errors import InvalidKey
    from s3w_storage.objects import get_storage

    monkeypatch.setenv("PM_PREFIX", "tenant-a")
    s3.put_object(Bucket=bucket, Key="tenant-b/docvers/secret.pdf", Body=b"other tenant")
    storage = get_storage()
    refused = []
    for key in ["../tenant-b/docvers/secret.pdf", "/tenant-b/x", "docvers/../../x", "", "a//b"]:
        with pytest.raises(InvalidKey) as raised:
            storage.get_bytes(key)
        refused.append(str(raised.value))
    with pytest.raises(InvalidKey):
        storage.relative_key("tenant-b/docvers/secret.pdf")
    with pytest.raises(InvalidKey):
        storage.delete(["../tenant-b/docvers/secret.pdf"])
    listed = [info.key for info in storage.iter_objects("")]
    record(
        "Hostile: keys outside the prefix",
        result=f"{len(refused) + 2} reads/deletes/relative keys refused with InvalidKey; "
        f"listing under the prefix sees {len(listed)} objects of the other tenant",
        figure=f"e.g. {refused[0][:120]}",
    )
    assert listed == []
    assert s3.get_object(Bucket=bucket, Key="tenant-b/docvers/secret.pdf")["Body"].read()
