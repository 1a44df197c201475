"""Files the thumbs tests render, generated once per session in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.thumbs.documents import PageSpec, make_images, make_pdf

# The PDF cases the issue asks for: sizes, orientations, a rotated page, a crop box.
PDF_CASES: dict[str, list[PageSpec]] = {
    "a4-portrait": [PageSpec("a4")],
    "a4-landscape": [PageSpec("a4", landscape=True)],
    "letter-portrait": [PageSpec("letter")],
    "letter-landscape": [PageSpec("letter", landscape=True)],
    "a4-rotated-90": [PageSpec("a4", rotate=90)],
    "letter-rotated-270": [PageSpec("letter", rotate=270)],
    "a4-rotated-180": [PageSpec("a4", rotate=180)],
    "a4-cropbox": [PageSpec("a4", top_half_crop=True)],
}


@pytest.fixture(scope="session")
def pdf_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pdfs")
    return {name: make_pdf(folder / f"{name}.pdf", pages) for name, pages in PDF_CASES.items()}


@pytest.fixture(scope="session")
def thirty_pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PageSpec]]:
    """30 pages mixing A4 and Letter, portrait and landscape, with a few rotated."""
    specs = [
        PageSpec(
            "a4" if n % 2 else "letter",
            landscape=n % 5 == 0,
            rotate=90 if n % 7 == 0 else 0,
        )
        for n in range(1, 31)
    ]
    path = tmp_path_factory.mktemp("thirty") / "thirty.pdf"
    return make_pdf(path, specs), specs


@pytest.fixture(scope="session")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_images(tmp_path_factory.mktemp("images"))
