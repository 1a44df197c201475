"""One symlink policy for every path: a symbolic link in the media root is never followed.

``s3w sync`` (and a distributed sync) already skip links and count them. Before this policy
``add_doc_vers`` uploaded whatever a link in the media root pointed at (a file outside the
media root too), and a render read through it. Scenario: a version's file is a link to a
file outside the media root, another version's shard folder is a link to a folder outside;
``add_doc_vers`` and the thumbnail must upload and render nothing from either, and say why.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from tests.support import papermerge as pm
from tests.support.results import record
from tests.support.stack import Stack, bulk_documents, pdf_bytes


def test_links_in_the_media_root_are_never_followed(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    st = make_stack()
    user = pm.insert_user(st.db_url)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "private.pdf"
    secret.write_bytes(pdf_bytes(1, text="private"))
    file_link, folder_link, good = bulk_documents(
        st.db_url, user, ["file-link.pdf", "folder-link.pdf", "good.pdf"]
    )
    path = st.media_root / pm.docver_key(file_link.version_id, file_link.file_name)
    path.parent.mkdir(parents=True)
    path.symlink_to(secret)
    folder = st.media_root / pm.docver_key(folder_link.version_id, folder_link.file_name)
    folder.parent.parent.mkdir(parents=True, exist_ok=True)
    (outside / "folder").mkdir()
    (outside / "folder" / folder_link.file_name).write_bytes(pdf_bytes(1, text="private 2"))
    folder.parent.symlink_to(outside / "folder", target_is_directory=True)
    st.write_media(good, pdf_bytes(1))
    st.start_worker(concurrency=1)
    rows = [file_link, folder_link, good]
    task = st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(r.version_id) for r in rows])
    thumb = st.send("s3_worker_generate_doc_thumbnail", doc_id=str(file_link.doc_id))
    outcomes = st.wait_for_outcomes([task, thumb], timeout=120)
    line = next(rest for _n, tid, out, rest in st.log_lines() if tid == task and out != "retry")
    keys = set(st.listing())
    uploaded = {r.file_name: st.key(pm.docver_key(r.version_id, r.file_name)) in keys for r in rows}
    thumbnail = st.key(f"thumbnails/jpg/{str(file_link.doc_id)[:2]}") in "".join(keys)
    row = pm.document_row(st.db_url, file_link.doc_id)
    record(
        "Symlinks in the media root (add_doc_vers, thumbnail)",
        block="security,hostile",
        result=f"uploaded {uploaded}; thumbnail through a link: {thumbnail}; "
        f"preview {row['preview_status']}",
        figure="0 links followed",
    )
    assert uploaded == {"file-link.pdf": False, "folder-link.pdf": False, "good.pdf": True}
    assert outcomes[task] == "failed"
    assert line.count("symbolic link") == 2, line
    assert not thumbnail
    assert outcomes[thumb] == "failed"
    assert row["preview_status"] == "failed"
    assert "symbolic link" in (row["preview_error"] or "")
    assert uuid.UUID(str(good.version_id))
