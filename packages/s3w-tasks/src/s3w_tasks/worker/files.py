"""A document's files: the media-root copy (links refused, fetched when missing), folder deletes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from s3w_storage.errors import ObjectNotFound
from s3w_storage.keys import media_path
from s3w_storage.objects import Storage, get_storage
from s3w_tasks.errors import PermanentError


def symlink_in(media_root: str | os.PathLike[str], path: Path) -> str | None:
    """Why ``path`` may not be used when a part of it below the media root is a symbolic
    link (None when none is). The policy for every path s3w reads or writes in the media
    root: links are never followed (``s3w sync`` skips and counts them; docs/security.md)."""
    root = Path(media_root)
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            where = current.relative_to(root).as_posix()
            return f"{where} is a symbolic link; s3w never follows links in the media root"
    return None


def ensure_local(storage: Storage, key: str) -> Path:
    """The media-root file for ``key``; downloaded atomically when it is not there yet."""
    path = media_path(storage.settings.media_root, key)
    if (why := symlink_in(storage.settings.media_root, path)) is not None:
        raise PermanentError(why)
    if path.is_file():
        return path
    try:
        return storage.download_file(key, path)
    except ObjectNotFound:
        raise PermanentError(
            f"{key} is neither in the media root ({path}) nor in the bucket"
        ) from None


def delete_prefixes(prefixes: Iterable[str]) -> int:
    """Delete everything under each folder prefix; keys are batched 1,000 to a request."""
    storage = get_storage()

    def keys() -> Iterable[str]:
        for prefix in prefixes:
            for info in storage.iter_objects(prefix):
                yield info.key

    result = storage.delete(keys())
    result.raise_for_errors()
    return result.deleted
