"""A test-only task that kills its own pool process every time it runs.

Loaded into a test worker with ``--include tests.tasks.crashing_tasks``. It claims a
document's thumbnail first (as the real task does), so the give-up path must leave the row
``failed`` rather than ``pending``. Nothing but the fault tests loads this module.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from s3w_tasks.celery_app import app
from s3w_tasks.running import ContractTask
from s3w_tasks.tasks import _fail_thumbnail
from s3w_tasks.worker.thumbnails import claim_thumbnail

CRASH = "s3w_test_crash_worker"


@app.task(name=CRASH, bind=True, base=ContractTask, give_up=_fail_thumbnail)  # type: ignore[untyped-decorator]
def crash_worker(self: ContractTask, doc_id: str, attempts_file: str) -> Any:
    with Path(attempts_file).open("a") as out:
        out.write(f"{self.request.retries}\n")
    claim_thumbnail(doc_id, self.request.id)
    os.kill(os.getpid(), signal.SIGKILL)
