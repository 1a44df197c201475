"""The restore: stream the bucket listing, decide per object, download what is missing or
different, and report a :class:`RestoreResult`.

Memory stays flat with the size of the archive: the listing is read page by page and at most
a few objects per thread are in flight; nothing holds the whole list.

What is fetched (the reverse of the sync rule): an object with no local file; an object
whose size differs from the local file's, unless the local file was modified after the
object (a newer local file is kept unless ``force``). With ``checksum`` a file of the same
size is compared by content; a same-size file whose content differs is not overwritten
(it is reported, since the bucket's copy may be the damaged one) unless ``force``.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from s3w_storage.dataplane import DataPlane
from s3w_storage.errors import InvalidArgument, InvalidKey, StorageError
from s3w_storage.keys import check_relative
from s3w_storage.restore.fetch import Listed, ParentGuard, fetch, remove_stale
from s3w_storage.results import Progress, RunResult, Tally
from s3w_storage.sync.walk import Failure, KeyFilter

if TYPE_CHECKING:
    from s3w_storage.objects import Storage

#: (key, 'unchanged' | 'newer' | 'planned' | 'restored' | 'failed', bytes, why: the
#: reason it is fetched or the error).
Outcome = tuple[str, str, int, str | None]
#: ``on_action(key, reason)``: told of every object that is (or, dry, would be) fetched.
Action = Callable[[str, str], None]


@dataclass(frozen=True)
class RestoreOptions:
    dry_run: bool = False
    checksum: bool = False
    force: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: Concurrent downloads (None: the settings' ``max_concurrency``).
    jobs: int | None = None


@dataclass
class RestoreResult(RunResult):
    """What a restore did. ``ok`` is False when any object could not be restored."""

    PUBLISHED = "restored unchanged kept_newer failed=failures objects"
    PUBLISHED_BYTES = "restored"

    root: str
    objects: int = 0
    restored: Tally = field(default_factory=Tally)
    planned: Tally = field(default_factory=Tally)
    kept_newer: int = 0
    excluded: int = 0
    stale_removed: int = 0


def check_destination(dest: str | os.PathLike[str], *, create: bool = True) -> str:
    """The absolute destination folder, created when missing (unless not ``create``); a
    file or unwritable folder is a clear :class:`InvalidArgument` before any network call."""
    given = os.fspath(dest)
    root = os.path.abspath(given)
    if os.path.lexists(root) and not os.path.isdir(root):
        raise InvalidArgument(f"destination {given} exists and is not a folder")
    if not create and not os.path.lexists(root):
        return root
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument(f"cannot create the destination {given}: {exc.strerror}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise InvalidArgument(f"destination {given} is not writable by this user")
    return root


def restore(
    storage: Storage,
    dest: str | os.PathLike[str],
    options: RestoreOptions | None = None,
    *,
    progress: Progress | None = None,
    on_action: Action | None = None,
) -> RestoreResult:
    """Bring every object under the storage prefix that is missing or different back to
    ``dest``. Per-object problems are collected in ``failures`` and the rest goes on."""
    options = options or RestoreOptions()
    started = time.monotonic()
    root = check_destination(dest, create=not options.dry_run)
    result = RestoreResult(root=root, dry_run=options.dry_run)
    if not options.dry_run:
        result.stale_removed = remove_stale(root)
    jobs = options.jobs or storage.settings.max_concurrency
    data = DataPlane(storage.settings, concurrency=jobs)
    worker = _Worker(data, root, options)
    report = progress or (lambda files, size: None)

    def record(outcome: Outcome) -> None:
        key, kind, size, message = outcome
        if kind == "failed":
            result.failures.append(Failure(key, message or "failed"))
            report(1, 0)
            return
        if kind == "unchanged":
            result.unchanged += 1
        elif kind == "newer":
            result.kept_newer += 1
        elif kind == "planned":
            result.planned.add(size)
        else:
            result.restored.add(size)
        if kind in ("planned", "restored") and on_action is not None:
            on_action(key, message or "")
        report(1, size if kind == "restored" else 0)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="s3w-restore") as pool:
        pending: set[Future[Outcome]] = set()
        for obj in _objects(data, options, result):
            pending.add(pool.submit(worker.handle, obj))
            if len(pending) >= jobs * 4:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    record(future.result())
        for future in pending:
            record(future.result())
    result.failures.sort(key=lambda f: f.key)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _objects(data: DataPlane, options: RestoreOptions, result: RestoreResult) -> Iterator[Listed]:
    """The listing under the prefix, as :class:`Listed`, filtered; folder markers skipped."""
    keep = KeyFilter(options.include, options.exclude)
    cut = len(data.head)
    for full, size, mtime, etag in data.listing(data.head):
        key = full[cut:]
        if key.endswith("/") and size == 0:
            continue
        if keep.active and not keep(key):
            result.excluded += 1
            continue
        result.objects += 1
        yield Listed(key, full, size, mtime, etag)


class _Worker:
    """Decides and fetches one object at a time, on any thread."""

    def __init__(
        self,
        data: DataPlane,
        root: str,
        options: RestoreOptions,
    ) -> None:
        self.data = data
        self.root = root
        self.options = options
        self.guard = ParentGuard(root)

    def handle(self, obj: Listed) -> Outcome:
        """What became of ``obj``: (key, kind, bytes, error message)."""
        try:
            check_relative(obj.key)
            reason = self.decide(obj)
            if reason is None:
                return obj.key, "unchanged", 0, None
            if reason == "newer":
                return obj.key, "newer", 0, None
            if self.options.dry_run:
                return obj.key, "planned", obj.size, reason
            final = self.guard.prepare(obj.key)
            return obj.key, "restored", fetch(self.data, obj, final), reason
        except InvalidKey as exc:
            return obj.key, "failed", 0, f"not a key that can be a file: {exc}"
        except StorageError as exc:
            return obj.key, "failed", 0, str(exc)
        except OSError as exc:
            where = exc.filename or self.root
            return obj.key, "failed", 0, f"cannot write {where}: {exc.strerror}"

    def decide(self, obj: Listed) -> str | None:
        """Why ``obj`` is fetched ('new', 'size', 'checksum'), 'newer' for a newer local
        file that is kept, or None when the local file is the same. Raises StorageError for
        a same-size file whose content differs (kept unless ``force``)."""
        path = os.path.join(self.root, *obj.key.split("/"))
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return "new"
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(
                f"{path} is not a regular file (a folder, link or device); move it away"
            )
        newer = int(info.st_mtime) > obj.mtime  # LastModified has whole seconds
        if info.st_size != obj.size:
            return "newer" if newer and not self.options.force else "size"
        if not self.options.checksum:
            return None
        same = self.same_content(obj, path)
        if same is None or same:
            return None
        if self.options.force:
            return "checksum"
        if newer:
            return "newer"
        raise StorageError(
            f"{path} has the object's size but other content; the local file was kept "
            "(check both with `s3w audit --checksum`; --force takes the bucket's copy)"
        )

    def same_content(self, obj: Listed, path: str) -> bool | None:
        """The local file's MD5 against the object's (ETag, the MD5 s3w stored, or a multipart
        ETag recomputed from the file's parts); None when the store has nothing to compare with."""
        return self.data.matches_file(obj.full, obj.etag, path)
