"""A generated corpus of hostile files (tests/support/corpus.py): lying page counts, huge
page boxes, pixel bombs, a TIFF whose second page is a bomb, truncated, encrypted and
wrong-magic files.

1. Rendered in a subprocess under a hard address-space limit (1 GiB), the way the worker
   renders (page count, thumbnail, all four previews, image-to-PDF conversion), with each
   renderer: every step ends ``ok`` or with one of s3w-thumbs' documented errors, never a
   crash or ``MemoryError``, and the process's peak RSS stays at or below 512 MiB.
2. Uploaded through a real worker (``process_upload``, then the thumbnail, then one
   page-image batch with a corrupt page between good ones): no document is left ``pending``,
   ``uploaded``, ``converting`` or ``processing_pages`` in PostgreSQL, each failure has a
   reason, no lying PDF got more page rows than it has pages, and the batch rendered its
   good pages.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.celery_worker import ROOT
from tests.support.corpus import PDF, Item, corpus
from tests.support.results import record
from tests.support.stack import Stack, bulk_documents, query

HARD_LIMIT = 1 << 30
RSS_BUDGET_MIB = 512
#: Small preview widths for the worker here, so a page 700 times taller than wide makes
#: bitmaps past JPEG's 65,500 rows with tens of megabytes, not gigabytes.
SMALL_PREVIEWS = {
    "PM_PREVIEW_PAGE_SIZE_SM": "100",
    "PM_PREVIEW_PAGE_SIZE_MD": "120",
    "PM_PREVIEW_PAGE_SIZE_LG": "150",
    "PM_PREVIEW_PAGE_SIZE_XL": "200",
}


def probe(item: Item, env: dict[str, str]) -> tuple[list[dict[str, Any]], int, int]:
    """Run tests/support/render_probe.py on ``item`` under the hard limit; returns its
    step lines, its exit status and its peak RSS in KiB (``wait4``, children included)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (HARD_LIMIT, HARD_LIMIT))

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.render_probe", str(item.path), item.mime],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=limit,
    )
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return lines, proc.returncode, usage.ru_maxrss


@pytest.mark.parametrize("renderer", ["pdfium", "poppler"])
def test_corpus_renders_within_the_memory_budget(tmp_path: Path, renderer: str) -> None:
    env = {"S3W_THUMBS_RENDERER": renderer, "S3W_THUMBS_RENDER_TIMEOUT": "20"}
    worst = (0, "")
    problems = []
    outcomes = {}
    for item in corpus(tmp_path / "corpus"):
        lines, code, rss = probe(item, env)
        worst = max(worst, (rss, item.name))
        outcomes[item.name] = ", ".join(
            f"{line['step']} {'ok' if 'ok' in line else line.get('error') or 'CRASH'}"
            for line in lines
        )
        crashes = [line for line in lines if "crash" in line]
        if code != 0 or crashes or len(lines) < 3:
            problems.append(f"{item.name} ({item.what}): exit {code}, {crashes or lines}")
        if rss > RSS_BUDGET_MIB * 1024:
            problems.append(f"{item.name} ({item.what}): peak RSS {rss // 1024} MiB")
    record(
        f"Hostile corpus, rendered ({renderer})",
        block="hostile,security",
        result=f"{len(outcomes)} files, {len(problems)} crashes or over budget",
        figure=f"peak RSS {worst[0] / 1024:.0f} MiB ({worst[1]}), budget {RSS_BUDGET_MIB} MiB",
        peak_rss_kib=worst[0],
        outcomes=outcomes,
    )
    assert not problems, "\n".join(problems)


def test_corpus_through_the_worker_leaves_nothing_stuck(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    from tests.support.corpus import pdf

    cs = make_stack(
        extra_env={
            **SMALL_PREVIEWS,
            "S3W_THUMBS_RENDER_TIMEOUT": "20",
            "S3W_TASK_MAX_RETRIES": "1",
            "S3W_MAX_PAGES": "50",
        }
    )
    cs.start_worker(concurrency=1)
    user = pm.insert_user(cs.db_url)
    items = list(corpus(tmp_path / "corpus"))
    extra = tmp_path / "extra"
    extra.mkdir()
    over = extra / "sixty-pages.pdf"
    over.write_bytes(pdf(pages=60))  # genuine pages, over this worker's S3W_MAX_PAGES=50
    thin = extra / "thin-700.pdf"
    thin.write_bytes(pdf(box="0 0 1 700"))  # previews past 65,500 rows at every size
    items += [
        Item(over.name, over, PDF, "60 real pages, S3W_MAX_PAGES=50"),
        Item(thin.name, thin, PDF, "page 1 x 700 pt"),
    ]
    rows = {}
    for item in items:
        (row,) = bulk_documents(
            cs.db_url,
            user,
            [item.name],
            mime_type=item.mime,
            page_count=0,
            processing_status="uploaded",
        )
        cs.write_media(row, item.path.read_bytes())
        rows[item.name] = row
    uploads = [
        cs.send(
            "process_upload",
            document_id=str(row.doc_id),
            document_version_id=str(row.version_id),
            lang="deu",
            user_id=str(user),
        )
        for row in rows.values()
    ]
    cs.wait_settled(uploads, timeout=600)
    thumbs = [
        cs.send("s3_worker_generate_doc_thumbnail", doc_id=str(row.doc_id)) for row in rows.values()
    ]
    # One page-image batch: a corrupt page between the thin page and a good one.
    (bad,) = bulk_documents(cs.db_url, user, ["corrupt-page.pdf"], page_count=1)
    cs.write_media(bad, b"%PDF-1.4\n" + os.urandom(3000))
    page_of = {
        name: query(
            cs.db_url,
            "SELECT p.id FROM pages p JOIN document_versions v ON v.id = p.document_version_id"
            " WHERE v.document_id = %s ORDER BY v.number DESC, p.number LIMIT 1",
            (str(rows[name].doc_id),),
        )
        for name in ("thin-700.pdf", "good.pdf")
    }
    batch_pages = [str(bad.page_ids[0])] + [str(found[0][0]) for found in page_of.values() if found]
    batch = cs.send("s3_worker_generate_page_image", page_ids=batch_pages)
    outcomes, _ = cs.wait_settled([*thumbs, batch], timeout=600)

    states = {name: pm.document_row(cs.db_url, row.doc_id) for name, row in rows.items()}
    page_rows = {
        name: query(
            cs.db_url,
            "SELECT count(*) FROM pages p JOIN document_versions v"
            " ON v.id = p.document_version_id WHERE v.document_id = %s",
            (str(row.doc_id),),
        )[0][0]
        for name, row in rows.items()
    }
    stuck = query(
        cs.db_url,
        "SELECT count(*) FROM documents WHERE processing_status IN"
        " ('uploaded', 'converting', 'processing_pages') OR preview_status = 'pending'",
    )[0][0]
    previews = {k for k in cs.listing("previews/pages/")}
    rendered = {p for p in batch_pages[1:] if any(f"/{p}/" in k for k in previews)}
    summary = {
        name: f"{s['processing_status']}/{s['preview_status']}" for name, s in states.items()
    }
    record(
        "Hostile corpus through the worker",
        block="hostile,security",
        result=(
            f"{len(items)} uploads: {stuck} documents stuck pending/converting; page-image batch "
            f"{outcomes.get(batch)}, {len(rendered)}/{len(batch_pages) - 1} good pages rendered"
        ),
        figure=f"{stuck} stuck; max page rows for a lying PDF: "
        f"{max(page_rows[n] for n in rows if n.startswith('count-'))}",
        states=summary,
    )
    assert stuck == 0, f"stuck documents: {summary}"
    for name, state in states.items():
        if state["processing_status"] == "failed":
            assert state["processing_error"], f"{name}: failed without a reason"
        if state["preview_status"] == "failed":
            assert state["preview_error"], f"{name}: thumbnail failed without a reason"
    for name in rows:
        if name.startswith("count-"):
            assert page_rows[name] <= 2, f"{name}: {page_rows[name]} page rows"
    assert states["sixty-pages.pdf"]["processing_status"] == "failed"
    assert "S3W_MAX_PAGES" in states["sixty-pages.pdf"]["processing_error"]
    assert states["good.pdf"]["processing_status"] == "ready"
    assert states["good.pdf"]["preview_status"] == "ready"
    assert outcomes.get(batch) == "failed"  # the corrupt page is reported ...
    assert rendered == set(batch_pages[1:]), f"rendered {rendered} of {batch_pages[1:]}"
    assert uuid.UUID(batch_pages[0])  # ... and the good pages of the batch were done
