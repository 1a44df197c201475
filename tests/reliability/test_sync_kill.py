"""``s3w sync`` SIGKILLed in the middle of a multipart upload, then run again.

Scenario: a 96 MiB file (512 MiB at full size) is uploaded in 5 MiB parts (16 MiB at full
size); once the server holds some of its parts the sync process is SIGKILLed, so it cannot
abort its multipart upload. Expected: the incomplete upload is visible in the bucket; the
second ``s3w sync`` completes (exit 0), the object has the file's size and MD5, and no
incomplete multipart upload is left (ListMultipartUploads is empty).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.reliability.test_s3_outage import sync_env
from tests.support.celery_worker import ROOT
from tests.support.results import record, size
from tests.support.services import find_binary, wait_until
from tests.support.stack import Stack

MIB = 1024 * 1024


def _write_random(path: Path, total: int) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("wb") as out:
        for _ in range(total // (8 * MIB)):
            block = os.urandom(8 * MIB)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _uploads(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    listed = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return list(listed.get("Uploads", []))


def _parts(client: Any, bucket: str, upload: dict[str, Any]) -> int:
    listed = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return len(listed.get("Parts", []))


def test_sync_killed_mid_multipart_then_rerun(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    total, part = size(96, 512) * MIB, size(5, 16) * MIB
    st = make_stack()
    prefix = f"{st.prefix}-big"
    root = tmp_path / "big-media"
    (root / "docvers/aa/bb").mkdir(parents=True)
    big = root / "docvers/aa/bb/big.pdf"
    digest = _write_random(big, total)
    env = {
        **sync_env(st, prefix),
        "PM_S3_MULTIPART_THRESHOLD": str(part),
        "PM_S3_MULTIPART_CHUNKSIZE": str(part),
    }
    argv = [find_binary("s3w"), "sync", str(root), "--json", "--no-progress"]
    client = st.s3.client()
    log = tmp_path / "sync-1.log"
    with log.open("wb") as sink:
        first = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )

    def some_parts_stored() -> bool:
        if first.poll() is not None:
            raise AssertionError(f"sync ended before the kill:\n{log.read_text()[-2000:]}")
        ups = _uploads(client, st.bucket, prefix + "/")
        return bool(ups) and _parts(client, st.bucket, ups[0]) >= 2

    wait_until(some_parts_stored, timeout=300, what="parts of the multipart upload", interval=0.1)
    os.killpg(first.pid, signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    left = _uploads(client, st.bucket, prefix + "/")
    parts_at_kill = _parts(client, st.bucket, left[0]) if left else 0

    rerun = subprocess.run(argv, capture_output=True, env=env, cwd=ROOT, timeout=900, check=False)
    out = rerun.stdout.decode(errors="replace") + rerun.stderr.decode(errors="replace")
    after = _uploads(client, st.bucket, prefix + "/")
    head = client.head_object(Bucket=st.bucket, Key=f"{prefix}/docvers/aa/bb/big.pdf")
    body_md5 = hashlib.md5(usedforsecurity=False)
    stream = client.get_object(Bucket=st.bucket, Key=f"{prefix}/docvers/aa/bb/big.pdf")["Body"]
    for chunk in iter(lambda: stream.read(8 * MIB), b""):
        body_md5.update(chunk)
    record(
        "s3w sync SIGKILLed mid multipart upload, then re-run",
        result=(
            f"re-run exit {rerun.returncode}; object {head['ContentLength'] // MIB} MiB, MD5 "
            f"{'equal' if body_md5.hexdigest() == digest else 'DIFFERENT'}; incomplete uploads "
            f"after kill {len(left)}, after re-run {len(after)}"
        ),
        figure=f"{total // MIB} MiB in {part // MIB} MiB parts; killed with {parts_at_kill} parts"
        " stored",
        size_mib=total // MIB,
        parts_at_kill=parts_at_kill,
    )
    assert rerun.returncode == 0, out[-2000:]
    assert len(left) == 1, "the kill should have left the multipart upload behind"
    assert head["ContentLength"] == total
    assert body_md5.hexdigest() == digest
    assert after == [], f"incomplete multipart uploads left: {after}"
