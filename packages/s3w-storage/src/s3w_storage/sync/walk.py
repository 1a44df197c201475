"""The local side of a sync: walk a media root with ``os.scandir`` into (key, size, mtime) rows."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from s3w_storage.errors import InvalidArgument, InvalidKey
from s3w_storage.files import PARTIAL_SUFFIX as PARTIAL_SUFFIX  # being written: never synced


@dataclass(frozen=True, slots=True)
class LocalFile:
    """One regular file under the media root; ``key`` is relative to the bucket prefix."""

    key: str
    path: str
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Failure:
    """A file or object that could not be read, compared, uploaded or deleted, and why."""

    key: str
    message: str


@dataclass
class LocalTree:
    """What the walk found: the files, the entries it could not read, and what it skipped."""

    root: str
    files: list[LocalFile] = field(default_factory=list)
    errors: list[Failure] = field(default_factory=list)
    skipped_links: int = 0
    skipped_special: int = 0
    excluded: int = 0


class KeyFilter:
    """``--include``/``--exclude`` globs on relative keys (``*`` also matches ``/``).

    A key is kept when it matches an include (or none are given) and no exclude.
    """

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._include = _compile(self.include)
        self._exclude = _compile(self.exclude)

    def __call__(self, key: str) -> bool:
        if self._include is not None and not self._include.match(key):
            return False
        return self._exclude is None or not self._exclude.match(key)

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude)


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def check_media_root(media_root: str | os.PathLike[str]) -> str:
    """The absolute media root, or a clear :class:`InvalidArgument` before any network call."""
    given = os.fspath(media_root)
    root = os.path.abspath(given)
    if not os.path.exists(root):
        raise InvalidArgument(f"media root {given} does not exist (set PM_MEDIA_ROOT)")
    if not os.path.isdir(root):
        raise InvalidArgument(f"media root {given} is not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise InvalidArgument(f"media root {given} is not readable by this user")
    return root


def check_within(within: str) -> str:
    """``within`` ('' or a relative folder prefix ending in '/'), else :class:`InvalidArgument`."""
    if not within:
        return ""
    from s3w_storage.keys import check_relative

    try:
        if not within.endswith("/"):
            raise InvalidKey(f"{within!r} does not end in '/'")
        check_relative(within[:-1])
    except InvalidKey as exc:
        raise InvalidArgument(f"not a folder prefix to sync within: {exc}") from None
    return within


def walk(
    media_root: str | os.PathLike[str],
    key_filter: KeyFilter | None = None,
    *,
    within: str = "",
) -> LocalTree:
    """Every regular file under ``media_root``, never following symbolic links.

    Keys are built from the names ``os.scandir`` returns below the absolute root, so a root
    given with a trailing '/' or as a relative path yields the same keys as
    :func:`s3w_storage.keys.key_for_path`. Symbolic links, sockets, FIFOs and devices are
    skipped; a directory or file that cannot be read is recorded in ``errors`` and the walk
    goes on. With ``within`` ('docvers/ab/') only that folder is walked; a missing folder is
    an empty tree.
    """
    root = check_media_root(media_root)
    tree = LocalTree(root=root)
    keep = key_filter if key_filter is not None and key_filter.active else None
    within = check_within(within)
    start = root
    for name in within.split("/")[:-1]:  # never through a symbolic link, as the full walk
        start = os.path.join(start, name)
        if os.path.islink(start) or not os.path.isdir(start):
            return tree
    stack: list[tuple[str, str]] = [(start, within)]
    while stack:
        directory, rel = stack.pop()
        stack.extend(scan_folder(tree, directory, rel, keep))
    return tree


def scan_folder(
    tree: LocalTree, directory: str, rel: str, keep: KeyFilter | None = None
) -> list[tuple[str, str]]:
    """One folder of the walk: its regular files added to ``tree`` (links, special files,
    unreadable entries and, with ``keep``, excluded keys counted there), and its sub-folders
    returned as (path, key prefix) pairs, in the order ``os.scandir`` gave them."""
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        tree.errors.append(
            Failure(rel.rstrip("/") or ".", f"cannot list {directory}: {exc.strerror}")
        )
        return []
    folders: list[tuple[str, str]] = []
    for entry in entries:
        key = rel + entry.name
        try:
            if entry.is_symlink():
                tree.skipped_links += 1
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append((entry.path, key + "/"))
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            tree.errors.append(Failure(key, f"cannot stat {entry.path}: {exc.strerror}"))
            continue
        if not stat.S_ISREG(info.st_mode):
            tree.skipped_special += 1
            continue
        if entry.name.endswith(PARTIAL_SUFFIX) and entry.name.startswith("."):
            continue
        if "\\" in entry.name:  # the only segment check_relative refuses that scandir yields
            tree.errors.append(Failure(key, f"{key!r} has a '\\' in a name; not a valid key"))
            continue
        if keep is not None and not keep(key):
            tree.excluded += 1
            continue
        tree.files.append(LocalFile(key, entry.path, info.st_size, info.st_mtime))
    return folders
