"""A media root shaped like Papermerge's, for benchmarks and the distributed-sync tests.

    files, size = make_tree(Path("media"), 20_000)

Files cycle through the four kinds the worker stores (document version, document thumbnail,
page preview, OCR text) under their real keys, so the tree fans out into ``docvers/00/`` ...
``ocr/pages/ff/`` as a real archive does. Ids and contents come from a seeded generator: the
same call makes the same keys; sizes are small (0.5-12 KiB), like thumbnails and OCR text,
so a sync's cost is per-file work, not bandwidth.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from s3w_storage.keys import docver_key, media_path, ocr_key, page_preview_key, thumbnail_key


def tree_keys(count: int, *, seed: int = 20_000) -> list[tuple[str, int]]:
    """``count`` (key, size) pairs of a Papermerge media root."""
    rng = random.Random(seed)
    found: list[tuple[str, int]] = []
    while len(found) < count:
        ident = uuid.UUID(int=rng.getrandbits(128), version=4)
        kind = len(found) % 4
        if kind == 0:
            found.append((docver_key(ident, "document.pdf"), rng.randint(4096, 12288)))
        elif kind == 1:
            found.append((thumbnail_key(ident), rng.randint(1024, 4096)))
        elif kind == 2:
            found.append((page_preview_key(ident, "sm"), rng.randint(2048, 8192)))
        else:
            found.append((ocr_key(ident, "page.txt"), rng.randint(512, 2048)))
    return found


def make_tree(root: Path, count: int, *, seed: int = 20_000) -> tuple[int, int]:
    """Write ``count`` files under ``root``; returns (files, bytes)."""
    rng = random.Random(seed + 1)
    total = 0
    for key, size in tree_keys(count, seed=seed):
        path = media_path(root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        total += size
    return count, total
