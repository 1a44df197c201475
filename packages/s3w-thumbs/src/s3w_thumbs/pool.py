"""Pillow's image memory kept for the next page instead of handed back after each one.

Pillow returns every freed image to the C library at once, and the C library returns large
blocks to the system; the next page then faults each of its pages in again. Drawing the
four previews of a 300-dpi A4 scan allocates about 70 MiB of images (the decoded page, the
resampler's intermediate, the 1600 px preview), so that cost 14,000 page faults and about
25 ms of system time per page, a fifth of the whole render. Pillow's own block pool
(documented as `PILLOW_BLOCK_SIZE` / `PILLOW_BLOCKS_MAX`) keeps freed blocks for reuse:
with blocks of 1 MiB, which any image can reuse whatever its width, and room for 64 of
them, a worker drawing page after page faults a few hundred pages per page instead.

The pool is process-wide and holds at most `BLOCKS_MAX` x `BLOCK_SIZE` (64 MiB) of freed
memory between pages, less than one page's own peak. It is set up when the first page is
drawn, never at import, and not at all when the environment sets either variable.
"""

from __future__ import annotations

import os
from functools import cache

# Pillow's C core, where the pool's knobs live (Image.core is the same module).
from PIL import _imaging

BLOCK_SIZE = 1 << 20
BLOCKS_MAX = 64
_ENVIRONMENT = ("PILLOW_BLOCK_SIZE", "PILLOW_BLOCKS_MAX")


@cache
def keep_image_memory() -> None:
    """Let Pillow keep freed image blocks for reuse (once per process)."""
    if any(name in os.environ for name in _ENVIRONMENT):
        return  # the operator chose; Pillow applied it when it was imported
    _imaging.set_block_size(BLOCK_SIZE)
    _imaging.set_blocks_max(max(BLOCKS_MAX, _imaging.get_blocks_max()))
