"""Mirror a local media root into the bucket: walk, list in parallel, diff, upload, delete.

``sync(storage, media_root, SyncOptions(...))`` is the whole job; ``build_plan`` and
``execute`` are its two halves (``--dry-run`` stops after the plan).
"""

from s3w_storage.protection import MD5_METADATA
from s3w_storage.sync.listing import RemoteObject, list_remote
from s3w_storage.sync.plan import (
    DEFAULT_MAX_DELETE,
    SyncOptions,
    SyncPlan,
    Upload,
    build_plan,
    file_md5,
)
from s3w_storage.sync.run import SyncResult, execute, sync
from s3w_storage.sync.walk import (
    Failure,
    KeyFilter,
    LocalFile,
    LocalTree,
    check_media_root,
    check_within,
    walk,
)

__all__ = [
    "DEFAULT_MAX_DELETE",
    "MD5_METADATA",
    "Failure",
    "KeyFilter",
    "LocalFile",
    "LocalTree",
    "RemoteObject",
    "SyncOptions",
    "SyncPlan",
    "SyncResult",
    "Upload",
    "build_plan",
    "check_media_root",
    "check_within",
    "execute",
    "file_md5",
    "list_remote",
    "sync",
    "walk",
]
