"""A time limit for one rendering job, checked between and (for PDFium) during renders."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from s3w_thumbs.errors import RenderTimeout


@dataclass
class Deadline:
    """Seconds allowed for a job, counted from creation on the monotonic clock."""

    seconds: float
    what: str
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self) -> None:
        """Raise `RenderTimeout` if the time is up."""
        if self.expired():
            raise self.timeout()

    def timeout(self) -> RenderTimeout:
        return RenderTimeout(
            f"{self.what}: rendering took longer than {self.seconds:g} s; the file may be "
            "pathological (check it in a viewer) or S3W_THUMBS_RENDER_TIMEOUT may be too low"
        )
