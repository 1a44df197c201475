"""Both sides of a migration listed and compared: size, and content MD5 where ETags are MD5s,
else the MD5 s3w stores in metadata, else the object read and hashed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from s3w_storage.dataplane import DataPlane, PartsMD5
from s3w_storage.errors import StorageError
from s3w_storage.protection import MD5_METADATA, encrypts_etag
from s3w_storage.sync.listing import MAX_SHARDS, RemoteObject

if TYPE_CHECKING:
    from s3w_storage.objects import Storage

#: A folder with at least this many sub-folders is listed by prefix as a whole.
FANOUT = 16
#: ... or, at the latest, this many levels below the prefix.
MAX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class Difference:
    """A key and what is wrong with it (or why it could not be copied or compared)."""

    key: str
    why: str

    @property
    def message(self) -> str:
        """The ``why``, under the name every run's failures share."""
        return self.why


def list_objects(storage: Storage, *, jobs: int = MAX_SHARDS) -> dict[str, RemoteObject]:
    """Every object under the storage's prefix, keyed by its relative key.

    The tree is read level by level with delimiter listings (small answers) down to the
    folders that fan out (``docvers/``, ``thumbnails/jpg/``, ... whose sub-folders are the
    ``ab/`` shards); each of those is then listed by prefix, on ``jobs`` threads. Every key is
    found once: it lies directly in a folder read with the delimiter, or under a fan-out folder.
    Listing by prefix rather than by key range matters on servers whose listing cost grows
    with every key returned: a range's last page reads on into the next range. Keys ending in
    '/' are folder markers (some servers list an emptied folder so), not files: left out.
    """
    head = storage.prefix + "/" if storage.prefix else ""
    workers = max(1, jobs)
    found: dict[str, RemoteObject] = {}
    fanned: list[str] = []
    level, depth = [""], 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3w-list") as pool:
        while level:
            deeper: list[str] = []
            folders = pool.map(storage.list_folder, level)
            for folder, (subfolders, objects) in zip(level, folders, strict=True):
                found.update(objects)
                if depth > 0 and (len(subfolders) >= FANOUT or depth >= MAX_DEPTH):
                    fanned.append(folder)
                else:
                    deeper.extend(subfolders)
            level, depth = deeper, depth + 1
        if fanned:
            data = storage.data
            for part in pool.map(lambda f: _list_prefix(data, head + f, len(head)), fanned):
                found.update(part)
    return found


def _list_prefix(data: DataPlane, prefix: str, cut: int) -> dict[str, RemoteObject]:
    """Every object under the full folder ``prefix``, keyed by its key less the first
    ``cut`` characters."""
    return {
        key[cut:]: RemoteObject(size, mtime, etag)
        for key, size, mtime, etag in data.listing(prefix)
        if not key.endswith("/")
    }


def list_both(
    source: Storage, target: Storage, *, jobs: int
) -> tuple[dict[str, RemoteObject], dict[str, RemoteObject]]:
    """Both sides listed at the same time, each on up to ``jobs`` threads."""
    workers = max(1, min(jobs, MAX_SHARDS))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="s3w-side") as pool:
        src = pool.submit(list_objects, source, jobs=workers)
        dst = pool.submit(list_objects, target, jobs=workers)
        return src.result(), dst.result()


def _stored_md5(storage: Storage, key: str) -> str | None:
    """The MD5 s3w stored in the object's metadata, or None."""
    info = storage.head(key)
    if info is None:
        return None
    value = info.metadata.get(MD5_METADATA, "").strip().lower()
    return value if re.fullmatch(r"[0-9a-f]{32}", value) else None


def stream_md5(storage: Storage, key: str, part: int | None = None) -> str:
    """MD5 of the object's content, read in parts (never whole in memory); with ``part``,
    the ETag a multipart upload of that part size would have."""
    blocks, _headers = storage.data.stream(storage.full_key(key))
    digest: Any = hashlib.md5(usedforsecurity=False) if part is None else PartsMD5(part)
    for block in blocks:
        digest.update(block)
    return str(digest.hexdigest())


def _content_md5(storage: Storage, key: str, obj: RemoteObject, *, read: bool) -> str | None:
    """The object's content MD5: its ETag when single-part, else the stored one, else (with
    ``read``) computed by reading it; None when unknown."""
    if not obj.is_multipart and not encrypts_etag(storage.settings):
        return obj.etag.lower()
    stored = _stored_md5(storage, key)
    if stored is not None or not read:
        return stored
    return stream_md5(storage, key)


def etags_are_md5(source: Storage, target: Storage) -> bool:
    """Whether a single-part ETag on either side is its content's MD5 (not so under
    SSE-KMS or SSE-C on AWS): when not, contents are compared by stored or computed MD5s."""
    return not (encrypts_etag(source.settings) or encrypts_etag(target.settings))


def quick_verdict(
    src: RemoteObject, dst: RemoteObject, *, etags_are_md5: bool = True
) -> bool | None:
    """True same, False different, None when the ETags cannot tell (a multipart side, or
    ETags that are not MD5s: SSE-KMS, SSE-C)."""
    if src.size != dst.size:
        return False
    if not etags_are_md5:
        return None
    if src.etag == dst.etag:
        # Two MD5s, or two multipart ETags over the same part MD5s: the same content.
        return True
    if not src.is_multipart and not dst.is_multipart:
        return False
    return None


def deep_verdict(
    source: Storage,
    target: Storage,
    key: str,
    src: RemoteObject,
    dst: RemoteObject,
    *,
    read_target: bool,
) -> tuple[str | None, int]:
    """(None when the contents are equal, else the reason, e.g. 'checksum'; objects read).

    The target's MD5 comes from its ETag or stored metadata; when it is unknown the object
    counts as different ('unverifiable') unless ``read_target`` lets it be hashed too. The
    source is hashed only when the target's MD5 is known and the source's is not.
    """
    read = 0
    dst_md5 = _content_md5(target, key, dst, read=False)
    part = None
    if dst_md5 is None:
        part = target.data.etag_part_size(target.full_key(key), dst.etag, dst.size)
    if part is not None:  # the target's multipart ETag, recomputed from the source's content
        same = stream_md5(source, key, part) == dst.etag.lower()
        return (None if same else "checksum"), 1
    if dst_md5 is None:
        if not read_target:
            return "unverifiable", read
        dst_md5 = stream_md5(target, key)
        read += 1
    src_md5 = _content_md5(source, key, src, read=False)
    if src_md5 is None:
        src_md5 = stream_md5(source, key)
        read += 1
    return (None if src_md5 == dst_md5 else "checksum"), read


#: (key, None when equal else why they differ, objects read, error when it could not tell).
Judgement = tuple[str, str | None, int, StorageError | None]


def judge_all(
    source: Storage,
    target: Storage,
    pairs: Sequence[tuple[str, RemoteObject, RemoteObject]],
    *,
    jobs: int,
    read_target: bool,
) -> Iterator[Judgement]:
    """:func:`deep_verdict` for each pair the ETags could not settle, on ``jobs`` threads."""

    def judge(item: tuple[str, RemoteObject, RemoteObject]) -> Judgement:
        key, src, dst = item
        try:
            why, read = deep_verdict(source, target, key, src, dst, read_target=read_target)
        except StorageError as exc:
            return key, None, 0, exc
        return key, why, read, None

    if not pairs:
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="s3w-md5") as pool:
        yield from pool.map(judge, pairs)


@dataclass
class Comparison:
    """The source against the target, key by key: keys the target lacks, how many match,
    which differ (why: ``size``, ``checksum``), which could not be compared (why: the error),
    and how many objects were read to tell."""

    missing: list[str] = field(default_factory=list)
    matched: int = 0
    different: list[Difference] = field(default_factory=list)
    errors: list[Difference] = field(default_factory=list)
    hashed: int = 0


def compare_all(
    source: Storage,
    target: Storage,
    src_index: Mapping[str, RemoteObject],
    dst_index: Mapping[str, RemoteObject],
    *,
    jobs: int,
    read_target: bool,
) -> Comparison:
    """Every source object against the target's: by ETag where that settles it, else by
    content MD5 (:func:`judge_all`, reading the target too when ``read_target``)."""
    found = Comparison()
    md5_etags = etags_are_md5(source, target)
    unsure: list[tuple[str, RemoteObject, RemoteObject]] = []
    for key in sorted(src_index):
        src, dst = src_index[key], dst_index.get(key)
        if dst is None:
            found.missing.append(key)
            continue
        verdict = quick_verdict(src, dst, etags_are_md5=md5_etags)
        if verdict is None:
            unsure.append((key, src, dst))
        elif verdict:
            found.matched += 1
        else:
            found.different.append(Difference(key, "size" if src.size != dst.size else "checksum"))
    for key, why, read, error in judge_all(
        source, target, unsure, jobs=jobs, read_target=read_target
    ):
        found.hashed += read
        if error is not None:
            found.errors.append(Difference(key, str(error)))
        elif why is None:
            found.matched += 1
        else:
            found.different.append(Difference(key, why))
    return found
