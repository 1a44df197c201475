"""Scanned pages: the fast path draws what the full render draws, and only where it may.

The reference is s3w's own full render of the same page: `scanned.plan` is switched off for
it (the one branch under test, not a stand-in for anything outside), so the PDFium drawing
the fast path replaces is what each output is compared with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from PIL import Image, ImageChops, ImageStat
from tests.thumbs.checks import jpeg_image
from tests.thumbs.scans import (
    Placed,
    ScanPage,
    full_page,
    jpeg_bytes,
    make_corpus,
    scan_image,
    write_pdf,
)
from tests.thumbs.scans import (
    jpeg_image as jpeg_placed,
)

import s3w_thumbs
from s3w_thumbs import pool, render_pdfium, scanned

DPI = 300  # what scanners write for documents
PREVIEWS = {"sm": 200, "md": 600, "lg": 900, "xl": 1600}
# Mean absolute difference from the full render, in grey levels (0-255) averaged over the
# channels, by output width. Both are fair drawings of the same image, but the fast path
# decodes at a reduced DCT scale and resamples with Pillow where PDFium resamples its own
# way, so dense 300-dpi text lands a fraction of a pixel apart; the difference shrinks as
# the output grows. Measured on this corpus: at most 11.0 (100 px), 7.7 (200), 5.1 (600),
# 3.1 (900), 2.2 (1600); a wrong crop, orientation or page is off by tens.
MAX_DIFFERENCE = {100: 12.0, 200: 9.0, 600: 6.0, 900: 4.0, 1600: 3.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bool]]:
    return make_corpus(tmp_path_factory.mktemp("scans"), dpi=DPI)


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[scanned.Plan | None]:
    """Every decision `scanned.plan` makes while the test renders."""
    seen: list[scanned.Plan | None] = []
    real = scanned.plan

    def recording(*args: Any) -> scanned.Plan | None:
        result = real(*args)
        seen.append(result)
        return result

    monkeypatch.setattr(scanned, "plan", recording)
    return seen


def full_render(monkeypatch: pytest.MonkeyPatch, draw: Callable[[], Any]) -> Any:
    with monkeypatch.context() as off:
        off.setattr(scanned, "plan", lambda *args: None)
        return draw()


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    channels = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean
    return sum(channels) / len(channels)


def assert_same_picture(fast: bytes, full: bytes, width: int, what: str) -> None:
    a, b = jpeg_image(fast), jpeg_image(full)
    assert a.size == b.size, f"{what}: fast path drew {a.size}, the full render {b.size}"
    assert a.width == width
    difference = mean_difference(a, b)
    assert difference <= MAX_DIFFERENCE[width], (
        f"{what}: fast path differs from the full render by {difference:.2f} grey levels "
        f"on average, expected at most {MAX_DIFFERENCE[width]}"
    )


def decision(path: Path) -> scanned.Plan | None:
    with render_pdfium._LOCK:
        document = pypdfium2.PdfDocument(str(path))
        page = document[0]
        try:
            return scanned.plan(page, path)
        finally:
            page.close()
            document.close()


def fast_cases() -> Iterator[str]:
    from tests.thumbs.scans import corpus as cases

    return (name for name, (_, fast) in cases(dpi=10).items() if fast)


def test_every_page_takes_the_path_it_must(corpus: dict[str, tuple[Path, bool]]) -> None:
    wrong = {
        name: "fast path" if decision(path) is not None else "full render"
        for name, (path, fast) in corpus.items()
        if (decision(path) is not None) != fast
    }
    assert not wrong, f"pages drawn the wrong way: {wrong}"


@pytest.mark.parametrize("case", list(fast_cases()))
def test_fast_path_draws_what_the_full_render_draws(
    corpus: dict[str, tuple[Path, bool]],
    case: str,
    plans: list[scanned.Plan | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = corpus[case][0]
    thumbnail = s3w_thumbs.render_thumbnail(path)
    previews = s3w_thumbs.render_page_previews(path, 1, PREVIEWS)
    assert plans, f"{case}: nothing rendered"
    assert all(plan is not None for plan in plans), f"{case}: fast path not taken"
    assert_same_picture(
        thumbnail, full_render(monkeypatch, lambda: s3w_thumbs.render_thumbnail(path)), 100, case
    )
    full = full_render(monkeypatch, lambda: s3w_thumbs.render_page_previews(path, 1, PREVIEWS))
    for name, width in PREVIEWS.items():
        assert_same_picture(previews[name], full[name], width, f"{case} {name}")


def test_pages_that_must_fall_back_are_drawn_by_the_full_render(
    corpus: dict[str, tuple[Path, bool]],
    plans: list[scanned.Plan | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, (path, fast) in corpus.items():
        if fast:
            continue
        plans.clear()
        drawn = s3w_thumbs.render_page_previews(path, 1, {"sm": 200})
        assert plans == [None], f"{name}: expected the full render, the fast path was planned"
        reference = full_render(
            monkeypatch, lambda p=path: s3w_thumbs.render_page_previews(p, 1, {"sm": 200})
        )
        assert drawn == reference, f"{name}: output differs from the full render"


def test_every_page_of_a_multi_page_scan_takes_the_fast_path(
    tmp_path: Path, plans: list[scanned.Plan | None]
) -> None:
    """Pages from one scanner share their JPEG headers byte for byte; each page's image is
    still told apart from the others."""
    pages = [ScanPage([jpeg_placed(scan_image(620, 877, seed=n))]) for n in range(3)]
    path = write_pdf(tmp_path / "three.pdf", pages)
    headers = {p.images[0].data[:600] for p in pages}
    assert len(headers) == 1, "expected identical JPEG headers on every page"
    drawn = dict(s3w_thumbs.iter_page_previews(path, [1, 2, 3], {"sm": 200}))
    assert sorted(drawn) == [1, 2, 3]
    assert len(plans) == 3
    assert all(plan is not None for plan in plans), plans
    assert len({drawn[n]["sm"] for n in drawn}) == 3, "expected three different pages"


def test_absurd_declared_size_is_left_to_the_full_render(tmp_path: Path) -> None:
    small = scan_image(200, 280)
    placed = jpeg_placed(small, Width=200_000, Height=280_000)
    path = write_pdf(tmp_path / "absurd.pdf", [ScanPage([placed])])
    assert decision(path) is None


def test_image_not_as_declared_falls_back(
    tmp_path: Path, plans: list[scanned.Plan | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JPEG whose own size disagrees with /Width and /Height passes the cheap checks but
    is refused once opened; the page is then rendered in full, not half-drawn."""
    image = scan_image(400, 560)
    placed = Placed(jpeg_bytes(image), {**jpeg_placed(image).keys, "Width": 200}, full_page())
    path = write_pdf(tmp_path / "liar.pdf", [ScanPage([placed])])
    drawn = s3w_thumbs.render_thumbnail(path)
    assert plans
    assert plans[0] is not None
    assert drawn == full_render(monkeypatch, lambda: s3w_thumbs.render_thumbnail(path))


def test_converted_jpeg_upload_takes_the_fast_path(
    tmp_path: Path, plans: list[scanned.Plan | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """process_upload turns a JPEG into a PDF holding it byte for byte (EXIF rotation as
    /Rotate); that PDF's thumbnail and previews come from the JPEG at reduced scale."""
    photo = scan_image(1240, 1754).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    upload = tmp_path / "scan.jpg"
    photo.save(upload, quality=85, exif=exif)
    pdf = tmp_path / "scan.pdf"
    assert s3w_thumbs.image_to_pdf(upload, pdf) == 1
    thumbnail = s3w_thumbs.render_thumbnail(pdf)
    previews = s3w_thumbs.render_page_previews(pdf, 1, PREVIEWS)
    assert plans
    assert all(plan is not None for plan in plans)
    assert_same_picture(
        thumbnail, full_render(monkeypatch, lambda: s3w_thumbs.render_thumbnail(pdf)), 100, "upload"
    )
    full = full_render(monkeypatch, lambda: s3w_thumbs.render_page_previews(pdf, 1, PREVIEWS))
    for name, width in PREVIEWS.items():
        assert_same_picture(previews[name], full[name], width, f"upload {name}")
    # Upright: the page is portrait, as the photo was taken.
    image = jpeg_image(thumbnail)
    assert image.height > image.width


def test_letter_page_and_a4_scan_sizes_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Output sizes follow the page box arithmetic of the full render to the pixel, for
    widths whose heights round differently."""
    image = scan_image(850, 1100)
    placed = Placed(jpeg_bytes(image), jpeg_placed(image).keys, (612, 0, 0, 792, 0, 0))
    path = write_pdf(tmp_path / "letter.pdf", [ScanPage([placed], size=(612, 792))])
    widths = {str(w): w for w in (97, 101, 333, 777, 1201)}
    fast = s3w_thumbs.render_page_previews(path, 1, widths)
    full = full_render(monkeypatch, lambda: s3w_thumbs.render_page_previews(path, 1, widths))
    for name in widths:
        a, b = jpeg_image(fast[name]), jpeg_image(full[name])
        assert a.size == b.size, f"width {name}: fast {a.size}, full {b.size}"


def test_scanned_page_is_drawn_outside_the_pdfium_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a scanned page is drawn from its image, another thread can take the PDFium lock
    (and render another document); the page is still drawn as it was."""
    path = write_pdf(tmp_path / "scan.pdf", [ScanPage([jpeg_placed(scan_image(620, 877))])])
    free: list[bool] = []
    real = scanned.render

    def watched(*args: Any) -> list[bytes] | None:
        # An RLock held by this thread would refuse a non-blocking acquire from another.
        other = threading.Thread(target=lambda: free.append(_take_and_release()))
        other.start()
        other.join()
        return real(*args)

    monkeypatch.setattr(scanned, "render", watched)
    drawn = s3w_thumbs.render_page_previews(path, 1, PREVIEWS)
    assert free == [True], "the PDFium lock was held while the page was drawn from its image"
    monkeypatch.setattr(scanned, "render", real)
    assert drawn == s3w_thumbs.render_page_previews(path, 1, PREVIEWS)


def _take_and_release() -> bool:
    taken = render_pdfium._LOCK.acquire(blocking=False)
    if taken:
        render_pdfium._LOCK.release()
    return taken


_POOL = """
import json, sys
from PIL import Image
import s3w_thumbs
s3w_thumbs.render_page_previews(sys.argv[1], 1)
print(json.dumps({
    "block_size": Image.core.get_block_size(),
    "blocks_max": Image.core.get_blocks_max(),
    "cached": Image.core.get_stats()["blocks_cached"],
}))
"""


def _pool_after_render(path: Path, **environment: str) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILLOW_")}
    result = subprocess.run(
        [sys.executable, "-c", _POOL, str(path)],
        capture_output=True,
        text=True,
        env={**env, **environment},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pool: dict[str, int] = json.loads(result.stdout)
    return pool


def test_image_memory_is_kept_for_the_next_page(tmp_path: Path) -> None:
    """After a scanned page, Pillow holds the freed image blocks for the next one (a fresh
    process, as a worker starts); an operator's own PILLOW_* settings are left alone."""
    path = write_pdf(tmp_path / "scan.pdf", [ScanPage([jpeg_placed(scan_image(1240, 1754))])])
    kept = _pool_after_render(path)
    assert kept["block_size"] == pool.BLOCK_SIZE
    assert kept["blocks_max"] == pool.BLOCKS_MAX
    assert 0 < kept["cached"] <= pool.BLOCKS_MAX, kept
    chosen = _pool_after_render(path, PILLOW_BLOCKS_MAX="3")
    assert chosen["blocks_max"] == 3
    assert chosen["block_size"] == 16 << 20, "Pillow's default block size was changed"
