"""Bad inputs and limits raise the documented exceptions with messages a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.thumbs.documents import make_encrypted_pdf, make_heavy_pdf

import s3w_thumbs
from s3w_thumbs import render_pdfium
from s3w_thumbs.deadline import Deadline
from s3w_thumbs.settings import get_settings

RENDERERS = ["pdfium", "poppler"]


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    return path


@pytest.fixture
def truncated(tmp_path: Path, pdf_files: dict[str, Path]) -> Path:
    """A PDF cut after its header: the body, xref and trailer are gone."""
    path = tmp_path / "truncated.pdf"
    path.write_bytes(pdf_files["a4-portrait"].read_bytes()[:40])
    return path


@pytest.fixture
def garbage_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    return path


@pytest.mark.parametrize("renderer", RENDERERS)
def test_empty_file(empty: Path, renderer: str) -> None:
    with pytest.raises(s3w_thumbs.CorruptDocument, match="empty"):
        s3w_thumbs.render_thumbnail(empty, renderer=renderer)
    with pytest.raises(s3w_thumbs.CorruptDocument, match="empty"):
        s3w_thumbs.page_count(empty)


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("case", ["truncated", "garbage_pdf"])
def test_corrupt_pdf(request: pytest.FixtureRequest, case: str, renderer: str) -> None:
    path = request.getfixturevalue(case)
    with pytest.raises(s3w_thumbs.CorruptDocument, match="damaged or truncated"):
        s3w_thumbs.render_page_previews(path, 1, renderer=renderer)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_corrupt_pdf_page_count(
    garbage_pdf: Path, renderer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3W_THUMBS_RENDERER", renderer)
    with pytest.raises(s3w_thumbs.CorruptDocument):
        s3w_thumbs.page_count(garbage_pdf)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_encrypted_pdf(tmp_path: Path, renderer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_encrypted_pdf(tmp_path / "locked.pdf")
    with pytest.raises(s3w_thumbs.EncryptedDocument, match="password"):
        s3w_thumbs.render_thumbnail(path, renderer=renderer)
    monkeypatch.setenv("S3W_THUMBS_RENDERER", renderer)
    get_settings.cache_clear()  # settings are read once per process; this test changes them
    with pytest.raises(s3w_thumbs.EncryptedDocument):
        s3w_thumbs.page_count(path)


def test_not_a_document(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("just some text, named like a PDF\n")
    with pytest.raises(s3w_thumbs.UnsupportedInput, match="not a PDF, JPEG, PNG or TIFF"):
        s3w_thumbs.render_thumbnail(path)
    with pytest.raises(s3w_thumbs.UnsupportedInput):
        s3w_thumbs.page_count(path)


def test_damaged_image(tmp_path: Path, image_files: dict[str, Path]) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(image_files["rgb.png"].read_bytes()[:200])
    with pytest.raises(s3w_thumbs.CorruptDocument):
        s3w_thumbs.render_thumbnail(path)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_page_out_of_range(pdf_files: dict[str, Path], renderer: str) -> None:
    path = pdf_files["a4-portrait"]
    with pytest.raises(s3w_thumbs.PageOutOfRange, match="page 2 asked for, the document has 1"):
        s3w_thumbs.render_page_previews(path, 2, renderer=renderer)
    for bad in (0, -1):
        with pytest.raises(s3w_thumbs.PageOutOfRange, match="start at 1") as raised:
            s3w_thumbs.render_page_previews(path, bad, renderer=renderer)
        assert raised.value.page_count is None


def test_errors_share_one_base() -> None:
    for error in (
        s3w_thumbs.UnsupportedInput,
        s3w_thumbs.CorruptDocument,
        s3w_thumbs.EncryptedDocument,
        s3w_thumbs.PageOutOfRange,
        s3w_thumbs.RendererUnavailable,
        s3w_thumbs.RenderTimeout,
        s3w_thumbs.InvalidSetting,
    ):
        assert issubclass(error, s3w_thumbs.ThumbnailError), error


def test_bad_arguments(pdf_files: dict[str, Path]) -> None:
    path = pdf_files["a4-portrait"]
    with pytest.raises(s3w_thumbs.InvalidSetting, match="renderer"):
        s3w_thumbs.render_thumbnail(path, renderer="ghostscript")
    with pytest.raises(s3w_thumbs.InvalidSetting, match="width"):
        s3w_thumbs.render_thumbnail(path, width=0)
    with pytest.raises(s3w_thumbs.InvalidSetting, match="unknown preview size 'xxl'"):
        s3w_thumbs.render_page_previews(path, 1, sizes=["xxl"])


@pytest.mark.parametrize("renderer", RENDERERS)
def test_render_time_limit(tmp_path: Path, renderer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A page of 3,000 strokes takes far longer than a millisecond to draw at 1600 px with
    # either renderer; the limit (not the clock of this test) is what is being checked.
    path = make_heavy_pdf(tmp_path / "heavy.pdf", lines=3000)
    monkeypatch.setenv("S3W_THUMBS_RENDER_TIMEOUT", "0.001")
    with pytest.raises(s3w_thumbs.RenderTimeout, match="S3W_THUMBS_RENDER_TIMEOUT"):
        s3w_thumbs.render_page_previews(path, 1, sizes=["xl"], renderer=renderer)


class _ExpiresAfterFirstCheck(Deadline):
    """A deadline that is still open when rendering starts and closed whenever asked again.

    Used instead of the clock so that the test proves, without timing, that PDFium's pause
    callback (not just the check between widths) is what stops a render in progress.
    """

    asked = 0

    def expired(self) -> bool:
        self.asked += 1
        return self.asked > 1


def test_pdfium_stops_mid_render(tmp_path: Path) -> None:
    path = make_heavy_pdf(tmp_path / "heavy.pdf", lines=3000)
    deadline = _ExpiresAfterFirstCheck(60.0, "heavy.pdf page 1")
    with pytest.raises(s3w_thumbs.RenderTimeout):
        render_pdfium.render(path, 1, [1600], deadline)
    # asked once before the width, then by PDFium's pause callback, then by the render loop
    assert deadline.asked >= 3, (
        f"expected PDFium to ask the deadline, it was asked {deadline.asked}"
    )


def test_invalid_settings(pdf_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_THUMBNAIL_SIZE", "wide")
    with pytest.raises(s3w_thumbs.InvalidSetting, match="PM_THUMBNAIL_SIZE='wide'"):
        s3w_thumbs.render_thumbnail(pdf_files["a4-portrait"])
