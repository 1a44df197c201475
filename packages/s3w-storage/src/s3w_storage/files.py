"""Writing a file whole or not at all: a temporary name beside the final one, renamed over
it when complete and removed otherwise."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

#: The end of every temporary file s3w writes (a sync never uploads these).
PARTIAL_SUFFIX = ".s3w-part"


@contextlib.contextmanager
def replacing(final: str | os.PathLike[str], *, suffix: str = PARTIAL_SUFFIX) -> Iterator[int]:
    """A descriptor (read and write) on a fresh temporary file beside ``final``, created
    empty (O_EXCL) with the mode a new file gets (not mkstemp's 0600); renamed over
    ``final`` when the block ends, removed when it raises."""
    folder, name = os.path.split(os.fspath(final))
    while True:
        tmp = os.path.join(folder, f".{name[:40]}.{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    try:
        try:
            yield fd
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
