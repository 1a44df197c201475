"""``s3w migrate`` validates every key it lists, as every other path does.

Scenario: the source bucket holds, beside a normal object, keys that no Papermerge layout
makes and that a path-interpreting store may resolve outside the target prefix (a ``\\``, a
``..`` segment, an empty segment). The plan copies the normal object and reports each of the
others as an error instead of copying it.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.storage.test_migrate import Side
from tests.support.results import record

from s3w_storage.migrate import build_plan, migrate

HOSTILE = [
    "docvers/a\\..\\..\\b.pdf",
    "docvers/x/../../../escape.pdf",
    "docvers//x.pdf",
    "docvers/./dot.pdf",
    "/docvers/absolute.pdf",
]


def test_migrate_refuses_keys_that_are_not_safe_relative_keys(s3_service: Any) -> None:
    """SeaweedFS normalises or refuses such keys when they are written (AWS S3 keeps them
    byte for byte), so the source listing AWS would return is handed to the plan as its
    ``listings`` argument; the target is a real, empty bucket."""
    from s3w_storage.sync.listing import RemoteObject

    client = s3_service.client()
    buckets = [f"mk-{uuid.uuid4().hex[:20]}" for _ in range(2)]
    for name in buckets:
        client.create_bucket(Bucket=name)
    try:
        good = "docvers/aa/bb/good.pdf"
        client.put_object(Bucket=buckets[0], Key=f"src/{good}", Body=b"%PDF-1.4")
        source = Side(s3_service, buckets[0], "src").storage
        target = Side(s3_service, buckets[1], "dst").storage
        obj = RemoteObject(8, 0.0, "0" * 32)
        listing = {key: obj for key in [good, *HOSTILE]}
        plan = build_plan(source, target, listings=(listing, {}))
        copies = {c.key for c in plan.copies}
        refused = {e.key for e in plan.errors}
        result = migrate(source, target)
        copied = {o["Key"] for o in client.list_objects_v2(Bucket=buckets[1]).get("Contents", [])}
        record(
            "Migrate: unsafe keys in the source listing",
            block="security",
            result=f"{len(HOSTILE)} unsafe keys listed; planned copies {sorted(copies)}; "
            f"refused {len(refused)}",
            figure=f"{len(set(HOSTILE) & copies)} unsafe keys planned for copying",
        )
        assert copies == {good}, copies
        assert refused == set(HOSTILE), refused
        assert result.ok
        assert copied == {f"dst/{good}"}, copied
    finally:
        for name in buckets:
            for item in client.list_objects_v2(Bucket=name).get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
            client.delete_bucket(Bucket=name)
