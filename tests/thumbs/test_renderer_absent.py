"""Each renderer works when the other one is missing from the machine."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.thumbs.checks import assert_layout, assert_size, jpeg_image

import s3w_thumbs
from s3w_thumbs.settings import get_settings

# Run in a fresh interpreter: this test process has already loaded pypdfium2's native
# library, and a module cannot be honestly un-imported. The finder below makes
# `import pypdfium2` fail exactly as it does where the package is not installed; nothing
# else is replaced.
_WITHOUT_PYPDFIUM2 = textwrap.dedent(
    """
    import io, json, sys
    from importlib.abc import MetaPathFinder

    class NoPypdfium2(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "pypdfium2" or name.startswith("pypdfium2."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoPypdfium2())
    import s3w_thumbs
    from PIL import Image

    source = sys.argv[1]
    out = {"renderer": s3w_thumbs.active_renderer(), "pages": s3w_thumbs.page_count(source)}
    previews = s3w_thumbs.render_page_previews(source, 1)
    previews["thumb"] = s3w_thumbs.render_thumbnail(source)
    out["sizes"] = {k: Image.open(io.BytesIO(v)).size for k, v in previews.items()}
    out["jpeg"] = all(v[:3] == b"\\xff\\xd8\\xff" for v in previews.values())
    try:
        s3w_thumbs.render_thumbnail(source, renderer="pdfium")
    except s3w_thumbs.RendererUnavailable as error:
        out["forced_pdfium"] = str(error)
    out["pypdfium2_loaded"] = "pypdfium2" in sys.modules
    print(json.dumps(out))
    """
)


def test_poppler_renders_without_pypdfium2(pdf_files: dict[str, Path]) -> None:
    source = pdf_files["a4-rotated-90"]
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PYPDFIUM2, str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"child failed:\n{result.stderr}"
    out = json.loads(result.stdout)
    assert out["renderer"] == "poppler"
    assert out["pages"] == 1
    assert out["jpeg"] is True
    assert out["pypdfium2_loaded"] is False
    # A4 portrait turned a quarter: shown 841.89 x 595.28; height = ceil(W * 595.28 / 841.89)
    assert out["sizes"] == {
        "sm": [200, 142],
        "md": [600, 425],
        "lg": [900, 637],
        "xl": [1600, 1132],
        "thumb": [100, 71],
    }
    assert "pypdfium2" in out["forced_pdfium"]


@pytest.fixture
def no_poppler_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH with no poppler tools on it: the OS itself then cannot find `pdftoppm`."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.mark.usefixtures("no_poppler_on_path")
def test_pdfium_renders_without_pdftoppm(pdf_files: dict[str, Path]) -> None:
    source = pdf_files["a4-rotated-90"]
    assert s3w_thumbs.active_renderer() == "pdfium"
    assert s3w_thumbs.page_count(source) == 1
    image = jpeg_image(s3w_thumbs.render_thumbnail(source))
    assert_size(image, 100, 841.89, 595.28)
    assert_layout(image, 90)
    previews = s3w_thumbs.render_page_previews(source, 1)
    assert [jpeg_image(previews[n]).width for n in ("sm", "md", "lg", "xl")] == [
        200,
        600,
        900,
        1600,
    ]


@pytest.mark.usefixtures("no_poppler_on_path")
def test_missing_pdftoppm_names_the_package(
    pdf_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(s3w_thumbs.RendererUnavailable, match="poppler-utils"):
        s3w_thumbs.render_thumbnail(pdf_files["a4-portrait"], renderer="poppler")
    monkeypatch.setenv("S3W_THUMBS_RENDERER", "poppler")
    get_settings.cache_clear()  # settings are read once per process; this test changes them
    with pytest.raises(s3w_thumbs.RendererUnavailable, match="pdfinfo is not on PATH"):
        s3w_thumbs.page_count(pdf_files["a4-portrait"])
