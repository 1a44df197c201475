"""Settings: Papermerge's defaults, read from the environment only when first needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from s3w_thumbs.errors import InvalidSetting
from s3w_thumbs.settings import get_settings, load_settings


def test_defaults_match_papermerge() -> None:
    settings = load_settings()
    assert settings.thumbnail_width == 100
    assert dict(settings.preview_widths) == {"sm": 200, "md": 600, "lg": 900, "xl": 1600}
    assert settings.renderer == "auto"
    assert settings.render_timeout == 60.0


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "PM_THUMBNAIL_SIZE": "128",
        "PM_PREVIEW_PAGE_SIZE_SM": "256",
        "PM_PREVIEW_PAGE_SIZE_MD": "512",
        "PM_PREVIEW_PAGE_SIZE_LG": "1024",
        "PM_PREVIEW_PAGE_SIZE_XL": "2048",
        "S3W_THUMBS_RENDERER": " Poppler ",
        "S3W_THUMBS_RENDER_TIMEOUT": "2.5",
    }.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    assert settings.thumbnail_width == 128
    assert dict(settings.preview_widths) == {"sm": 256, "md": 512, "lg": 1024, "xl": 2048}
    assert settings.renderer == "poppler"
    assert settings.render_timeout == 2.5
    assert get_settings() is settings, "expected one cached settings object per process"


def test_empty_values_mean_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_THUMBNAIL_SIZE", "")
    monkeypatch.setenv("S3W_THUMBS_RENDERER", "")
    settings = load_settings()
    assert settings.thumbnail_width == 100
    assert settings.renderer == "auto"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PM_THUMBNAIL_SIZE", "0"),
        ("PM_THUMBNAIL_SIZE", "1.5"),
        ("PM_PREVIEW_PAGE_SIZE_XL", "100000"),
        ("S3W_THUMBS_RENDERER", "mupdf"),
        ("S3W_THUMBS_RENDER_TIMEOUT", "-1"),
        ("S3W_THUMBS_RENDER_TIMEOUT", "soon"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSetting, match=name):
        load_settings()


def test_import_reads_nothing_and_pulls_in_no_upper_layer() -> None:
    """Importing s3w_thumbs with a broken environment works; the error comes on first use.

    Also checks the layering: thumbs sits below storage's users and never imports storage,
    Celery or SQLAlchemy, nor the PDF renderer before it is needed.
    """
    code = (
        "import json, sys, s3w_thumbs\n"
        "loaded = sorted(m for m in ('s3w_storage', 'celery', 'sqlalchemy', 'pypdfium2')"
        " if m in sys.modules)\n"
        "try:\n"
        "    s3w_thumbs.render_thumbnail('/nonexistent.pdf')\n"
        "except s3w_thumbs.InvalidSetting as error:\n"
        "    print(json.dumps({'loaded': loaded, 'error': str(error)}))\n"
    )
    env = {"PM_THUMBNAIL_SIZE": "huge", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["loaded"] == []
    assert "PM_THUMBNAIL_SIZE='huge'" in out["error"]
