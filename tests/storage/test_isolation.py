"""s3w-storage stands alone: importing it pulls in no upper layer and reads nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

UPPER = ("celery", "sqlalchemy", "typer", "s3w_tasks", "s3w_thumbs", "s3w_cli", "s3worker")


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    return set(json.loads(result.stdout))


def test_import_pulls_in_no_upper_layer() -> None:
    loaded = _modules_after("import s3w_storage")
    assert sorted(m for m in loaded if m.split(".")[0] in UPPER) == []
    # The package root is light: boto3 loads with the client, not with the error classes.
    assert "boto3" not in loaded
    assert "botocore" not in loaded


def test_every_module_imports_without_upper_layers() -> None:
    loaded = _modules_after(
        "import s3w_storage.settings, s3w_storage.client, s3w_storage.objects, s3w_storage.keys"
    )
    assert sorted(m for m in loaded if m.split(".")[0] in UPPER) == []


@pytest.mark.skipif(
    os.environ.get("S3W_TEST_LEG") != "storage", reason="only the isolated storage leg"
)
def test_isolated_leg_has_no_celery_or_sqlalchemy() -> None:
    assert importlib.util.find_spec("celery") is None
    assert importlib.util.find_spec("sqlalchemy") is None
