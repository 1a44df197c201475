"""Ids and names from a message cannot forge a log line.

Scenario: a message whose ids carry a newline followed by a line that looks like another
task's outcome (and an ANSI escape, and a Unicode line separator). Each worker log line is
one line: the injected text appears only escaped (``\\n``), never at the start of a line.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tests.support.results import record
from tests.support.stack import Stack

FAKE = "task=s3_worker_add_doc_vers id=forged-0000 outcome=ok duration=0.01s result=forged"


def test_ids_with_control_characters_are_escaped(make_stack: Callable[..., Stack]) -> None:
    st = make_stack()
    st.start_worker(concurrency=1)
    payloads = [
        f"x\n{FAKE}",
        f"y\r\n{FAKE}",
        f"\x1b[2Jz\u2028{FAKE}",
    ]
    tasks = [
        st.send("s3_worker_add_doc_vers", doc_ver_ids=[payloads[0], str(uuid.uuid4())]),
        st.send("s3_worker_generate_doc_thumbnail", doc_id=payloads[1]),
        st.send(
            "process_upload",
            document_id=payloads[2],
            document_version_id=payloads[0],
            lang="deu",
            user_id="u",
            **{f"extra\n{FAKE}": 1},
        ),
    ]
    outcomes, _ = st.wait_settled(tasks, timeout=120)
    log = st.workers[0].log()
    forged = [line for line in log.splitlines() if line.startswith(FAKE)]
    raw_controls = [line for line in log.splitlines() if "\x1b" in line or "\u2028" in line]
    record(
        "Forged log lines (ids with newlines and escapes)",
        block="security",
        result=f"{len(tasks)} tasks ({sorted(outcomes.values())}); forged lines: {len(forged)}",
        figure=f"{len(forged) + len(raw_controls)} forged or raw control characters",
    )
    assert not forged, forged
    assert not raw_controls, raw_controls
    assert outcomes == dict.fromkeys(tasks, "failed"), outcomes
