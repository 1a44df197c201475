"""The document budget (s3w_thumbs.budget): pages, pixels and memory, checked before allocating."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from s3w_thumbs import DocumentTooLarge, InvalidSetting, render_thumbnail
from s3w_thumbs.budget import (
    JPEG_MAX_SIDE,
    check_image,
    check_pages,
    fit,
    get_budget,
    limited,
)


@pytest.fixture(autouse=True)
def fresh_budget() -> Iterator[None]:
    get_budget.cache_clear()
    yield
    get_budget.cache_clear()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1600, 2263), (1600, 2263)),  # an A4 preview: unchanged
        ((100, 1_440_000), (4, 65_500)),  # a 1 x 14,400 pt page: JPEG's height limit
        ((1600, 100_000), (800, 50_000)),  # the pixel budget binds first
        ((10_000, 10_000), (6324, 6324)),  # 100 Mpx: the 40 Mpx budget, aspect kept
    ],
)
def test_fit_scales_down_to_the_budget(size: tuple[int, int], expected: tuple[int, int]) -> None:
    width, height = fit(*size)
    assert (width, height) == expected
    assert height <= JPEG_MAX_SIDE
    assert width * height <= get_budget().max_pixels


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3W_MAX_PAGES", "3")
    monkeypatch.setenv("S3W_MAX_RENDER_PIXELS", "1_000_000")
    monkeypatch.setenv("S3W_RENDER_MEMORY_LIMIT", "256")
    budget = get_budget()
    assert (budget.max_pages, budget.max_pixels, budget.memory_limit) == (3, 10**6, 256 << 20)
    assert check_pages("a.pdf", 3) == 3
    with pytest.raises(DocumentTooLarge, match="4 pages, more than S3W_MAX_PAGES=3"):
        check_pages("a.pdf", 4)
    with pytest.raises(DocumentTooLarge, match=r"page 2\): the image is 1,001 x 1,000"):
        check_image("a.tiff", (1001, 1000), 2)
    get_budget.cache_clear()
    monkeypatch.setenv("S3W_MAX_PAGES", "0")
    with pytest.raises(InvalidSetting, match="S3W_MAX_PAGES='0'"):
        get_budget()


def test_pillow_bomb_warning_is_a_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image above the budget but below twice it (where Pillow only warns) is refused."""
    monkeypatch.setenv("S3W_MAX_RENDER_PIXELS", "1000000")
    path = tmp_path / "big.png"
    out = io.BytesIO()
    Image.new("L", (1200, 1000)).save(out, format="PNG")
    path.write_bytes(out.getvalue())
    with pytest.raises(DocumentTooLarge, match="S3W_MAX_RENDER_PIXELS=1,000,000"):
        render_thumbnail(path)


def test_a_renderer_subprocess_runs_under_the_memory_ceiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ceiling reaches the child: the shell that becomes pdftoppm reports it."""
    monkeypatch.setenv("S3W_RENDER_MEMORY_LIMIT", "300")
    seen = subprocess.run(
        limited(["sh", "-c", "ulimit -v"]), capture_output=True, text=True, check=True
    ).stdout
    assert seen.strip() == str(300 * 1024)
    get_budget.cache_clear()
    monkeypatch.setenv("S3W_RENDER_MEMORY_LIMIT", "0")  # no ceiling: the command as given
    assert limited(["pdftoppm", "-v"]) == ["pdftoppm", "-v"]
