"""Properties that hold for every input Hypothesis can make: key building, id parsing,
settings parsing, secret masking, log escaping and message signing.

Each property is checked on a few hundred generated inputs per run (``S3W_TEST_RELIABILITY_FULL``
raises that tenfold); a failure prints the smallest input that breaks it.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.results import full_size

EXAMPLES = 2000 if full_size() else 200
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

uuids = st.uuids()
#: What Papermerge can store as a file name: any text but '/', '\\', NUL and '.'/'..'.
safe_names = st.text(min_size=1, max_size=60).filter(
    lambda s: "/" not in s and "\\" not in s and "\x00" not in s and s not in (".", "..")
)
prefixes = st.from_regex(r"\A([a-z0-9][a-z0-9_-]{0,10}(/[a-z0-9][a-z0-9_-]{0,10}){0,2})?\Z")


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ------------------------------------------------------------------------------ keys


@PROPERTY
@given(uuids, safe_names, prefixes)
def test_docver_key_layout(ident: uuid.UUID, name: str, prefix: str) -> None:
    from s3w_storage.keys import check_relative, docver_key, docver_prefix

    key = docver_key(ident, name, prefix)
    u = str(ident)
    head = f"{prefix}/" if prefix else ""
    assert key == f"{head}docvers/{u[:2]}/{u[2:4]}/{u}/{name}"
    assert key.startswith(docver_prefix(ident, prefix))
    assert check_relative(key) == key


@PROPERTY
@given(uuids, st.text(max_size=40))
def test_docver_key_refuses_every_unsafe_name(ident: uuid.UUID, name: str) -> None:
    from s3w_storage.errors import InvalidKey
    from s3w_storage.keys import docver_key

    unsafe = not name or name in (".", "..") or any(c in name for c in "/\\\x00")
    try:
        key = docver_key(ident, name)
    except InvalidKey:
        assert unsafe, f"{name!r} refused"
    else:
        assert not unsafe, f"{name!r} accepted as {key!r}"


@PROPERTY
@given(st.lists(st.text(max_size=12), min_size=1, max_size=6).map("/".join))
def test_an_accepted_key_stays_inside_the_media_root(key: str) -> None:
    from s3w_storage.errors import InvalidKey
    from s3w_storage.keys import check_relative, media_path

    try:
        check_relative(key)
    except InvalidKey:
        return
    root = "/srv/media"
    path = str(media_path(root, key))
    assert posixpath.normpath(path).startswith(root + "/"), (key, path)
    assert posixpath.normpath(path) == path


# ------------------------------------------------------------------------------- ids


@PROPERTY
@given(uuids, st.sampled_from([str, lambda u: str(u).upper(), lambda u: u.hex, "{{{}}}".format]))
def test_every_spelling_of_a_uuid_parses_to_the_canonical_form(ident: uuid.UUID, spell) -> None:  # type: ignore[no-untyped-def]
    from s3w_tasks.worker.ids import parse_id

    assert parse_id(spell(ident), "document id") == str(ident)


@PROPERTY
@given(st.lists(st.one_of(uuids.map(str), st.text(max_size=50)), max_size=30))
def test_split_ids_keeps_order_and_reports_the_rest(values: list[str]) -> None:
    from s3w_tasks.worker.ids import split_ids

    ids, malformed = split_ids(values, "page id")
    expected: list[str] = []
    bad = 0
    for value in values:
        try:
            expected.append(str(uuid.UUID(value)))
        except ValueError:
            bad += 1
    assert ids == list(dict.fromkeys(expected))
    assert len(malformed) == min(bad, 6)
    assert all(m.isprintable() for m in malformed), malformed


# -------------------------------------------------------------------------- settings


@PROPERTY
@given(st.text(max_size=12))
def test_width_settings_parse_or_name_the_variable(raw: str) -> None:
    from s3w_thumbs.errors import InvalidSetting
    from s3w_thumbs.settings import MAX_WIDTH, load_settings

    if "\x00" in raw:
        return  # the environment cannot hold NUL
    with environ(PM_THUMBNAIL_SIZE=raw):
        try:
            width, refused = load_settings().thumbnail_width, ""
        except InvalidSetting as exc:
            width, refused = 0, str(exc)
    if refused:
        assert "PM_THUMBNAIL_SIZE" in refused
        return
    assert 1 <= width <= MAX_WIDTH
    assert width == (int(raw) if raw.strip() else 100)


@PROPERTY
@given(st.text(max_size=12), st.text(max_size=12))
def test_budget_settings_parse_or_name_the_variable(pages: str, pixels: str) -> None:
    from s3w_thumbs.budget import get_budget
    from s3w_thumbs.errors import InvalidSetting

    if "\x00" in pages + pixels:
        return
    with environ(S3W_MAX_PAGES=pages, S3W_MAX_RENDER_PIXELS=pixels):
        get_budget.cache_clear()
        try:
            budget, refused = get_budget(), ""
        except InvalidSetting as exc:
            budget, refused = None, str(exc)
        finally:
            get_budget.cache_clear()
    if budget is None:
        assert re.search(r"S3W_MAX_(PAGES|RENDER_PIXELS)", refused)
        return
    assert budget.max_pages >= 1
    assert budget.max_pixels >= 10_000


@PROPERTY
@given(st.text(max_size=12))
def test_worker_settings_parse_or_name_the_variable(raw: str) -> None:
    from s3w_tasks.errors import ConfigurationError
    from s3w_tasks.settings import load_settings

    if "\x00" in raw:
        return
    with environ(S3W_TASK_MAX_RETRIES=raw):
        try:
            value, refused = load_settings().max_retries, ""
        except ConfigurationError as exc:
            value, refused = -1, str(exc)
    if refused:
        assert "max_retries" in refused or "S3W_TASK_MAX_RETRIES" in refused
        return
    assert 0 <= value <= 100


# --------------------------------------------------------------------------- secrets

passwords = st.text(alphabet="abcdefghXYZ0123456789/#?@:%", min_size=1, max_size=24).map(
    lambda s: "Pw" + s
)


@PROPERTY
@given(
    passwords,
    st.sampled_from(["postgresql", "postgresql+psycopg2", "redis", "rediss", "amqp"]),
    st.sampled_from(["", "?sslmode=require", "?password=hunter2x"]),
)
def test_masking_never_shows_a_password(password: str, scheme: str, query: str) -> None:
    from s3w_cli.masking import MIN_PIECE, mask_url, scrub

    url = f"{scheme}://user:{password}@db.example:5432/papermerge{query}"
    masked = mask_url(url)
    assert masked is not None
    pieces = [p for p in re.split(r"[/#?@:%]", password) if len(p) >= MIN_PIECE]
    for secret in [password, *pieces]:
        assert secret not in masked, (url, masked)
    assert "hunter2x" not in masked
    said = scrub(f"cannot connect with {password} to {url}", [url])
    assert password not in said


@PROPERTY
@given(st.text(max_size=200))
def test_log_values_are_one_printable_line(value: str) -> None:
    from s3w_tasks.errors import clean

    shown = clean(value)
    assert shown.isprintable(), repr(shown)
    if value.isprintable() and len(value) <= 300:
        assert shown == value


# ----------------------------------------------------------------------------- fleet

KEY = b"k" * 32


@PROPERTY
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10).filter(lambda k: k not in ("signature", "expires")),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
        max_size=6,
    ),
    st.text(min_size=1, max_size=10),
)
def test_any_change_to_a_signed_message_is_refused(kwargs: dict[str, object], extra: str) -> None:
    from s3w_tasks.fleet.authority import FleetRefused, sign, verify

    signed = sign("s3w_sync_shard", kwargs, KEY, ttl=60)
    verify("s3w_sync_shard", signed, KEY)
    changed = {**signed, f"x{extra}": 1}
    with pytest.raises(FleetRefused):
        verify("s3w_sync_shard", changed, KEY)
    with pytest.raises(FleetRefused):
        verify("s3w_other", signed, KEY)
    with pytest.raises(FleetRefused):
        verify("s3w_sync_shard", signed, b"o" * 32)
