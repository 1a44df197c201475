"""Migrate: copy every object under one bucket and prefix to another, incrementally, and verify.

``migrate(source, target)`` lists both sides, plans what is missing or different, and copies
it; ``verify(source, target)`` compares both sides object by object. Objects are compared by
size and content MD5: an ETag is an MD5 only for a single-part upload, so where one side is
a multipart object the MD5 s3w stores in the object's metadata (``x-amz-meta-s3w-md5``) is
used, or the object is read and hashed; a multipart ETag is never taken for an MD5.

Copies are streamed: small objects (up to :data:`IN_MEMORY`) are fetched and put whole by a
pool of threads through the data plane; larger ones are read part by part from the
source and written as a multipart upload, which is aborted if anything (an interrupt too)
stops it. When source and target share endpoint and credentials the server copies
(``CopyObject``) and no bytes pass through this process.

Modules: :mod:`.target` (the target's settings), :mod:`.compare` (listing, checksums),
:mod:`.plan`, :mod:`.copy`, :mod:`.verify`.
"""

from s3w_storage.migrate.compare import Difference, list_both, list_objects, stream_md5
from s3w_storage.migrate.copy import (
    IN_MEMORY,
    MigrateResult,
    execute,
    migrate,
)
from s3w_storage.migrate.plan import Copy, MigrateOptions, MigratePlan, build_plan
from s3w_storage.migrate.target import (
    check_distinct,
    mask,
    read_env_file,
    same_account,
    settings_as_env,
    settings_from_values,
    switch_variables,
    target_settings,
)
from s3w_storage.migrate.verify import ExpectedKeys, VerifyReport, verify

__all__ = [
    "IN_MEMORY",
    "Copy",
    "Difference",
    "ExpectedKeys",
    "MigrateOptions",
    "MigratePlan",
    "MigrateResult",
    "VerifyReport",
    "build_plan",
    "check_distinct",
    "execute",
    "list_both",
    "list_objects",
    "mask",
    "migrate",
    "read_env_file",
    "same_account",
    "settings_as_env",
    "settings_from_values",
    "stream_md5",
    "switch_variables",
    "target_settings",
    "verify",
]
