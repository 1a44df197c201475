"""Where a migration goes: the target's settings from an env file or options, never from
``os.environ``; the check that it is not the source; the variables an operator changes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from s3w_storage.errors import ConfigError
from s3w_storage.settings import StorageSettings


class _GivenSettings(StorageSettings):
    """:class:`StorageSettings` read only from the values passed in, never from os.environ."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


#: Every accepted environment name (upper case) -> the settings field it sets.
ENV_NAMES: dict[str, str] = {
    str(choice).upper(): name
    for name, info in StorageSettings.model_fields.items()
    for choice in getattr(info.validation_alias, "choices", [name])
}

_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def read_env_file(path: str | Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (``export``, quotes and ``#`` comments allowed).

    The values are returned, never put into ``os.environ``. A malformed line is reported by
    number only: it may hold a secret.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the target env file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the target env file {path} is not UTF-8 text") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(line)
        if match is None:
            raise ConfigError(f"{path}, line {number}: expected NAME=value")
        values[match.group(1).upper()] = _unquote(match.group(2).strip())
    return values


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        inner = raw[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\") if raw[0] == '"' else inner
    return re.split(r"\s+#", raw, maxsplit=1)[0]


def settings_from_values(values: Mapping[str, str], *, origin: str) -> StorageSettings:
    """Checked storage settings from environment-style ``values`` (names as in the README).

    Raises one :class:`ConfigError` naming ``origin`` and every wrong or missing variable.
    """
    given = {name.upper(): value for name, value in values.items() if value != ""}
    known = {name: value for name, value in given.items() if name in ENV_NAMES}
    try:
        settings = _GivenSettings.model_validate(known)
    except ValidationError as exc:
        wrong = []
        for error in exc.errors():
            loc = str(error["loc"][0]).upper() if error["loc"] else "?"
            field_name = ENV_NAMES.get(loc, loc.lower())
            names = [n for n, f in ENV_NAMES.items() if f == field_name and n in known]
            message = error["msg"].removeprefix("Value error, ")
            wrong.append(f"{names[0] if names else loc}: {message}")
        raise ConfigError(
            f"invalid target configuration ({origin}):\n  " + "\n  ".join(wrong)
        ) from None
    problems = settings.problems()
    if problems:
        raise ConfigError(
            f"incomplete target configuration ({origin}):\n  " + "\n  ".join(problems)
        )
    return settings


#: Location and credential variables, in the order a switch lists them.
LOCATION_NAMES = (
    "STORAGE_BACKEND",
    "PM_S3_BUCKET_NAME",
    "PM_PREFIX",
    "PM_S3_ENDPOINT_URL",
    "PM_S3_ADDRESSING_STYLE",
    "PM_S3_ALLOW_HTTP",
    "AWS_REGION_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "R2_ACCOUNT_ID",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
)
SECRET_NAMES = frozenset({"AWS_SECRET_ACCESS_KEY", "R2_SECRET_ACCESS_KEY"})
KEY_ID_NAMES = frozenset({"AWS_ACCESS_KEY_ID", "R2_ACCESS_KEY_ID"})


def settings_as_env(settings: StorageSettings) -> dict[str, str]:
    """The primary environment names and values that reproduce ``settings`` (secrets included:
    for building other settings, never for printing; see :func:`switch_variables`)."""
    env: dict[str, str] = {}
    for name, info in StorageSettings.model_fields.items():
        value = getattr(settings, name)
        if value is None or value == info.default:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        primary = next(n for n, f in ENV_NAMES.items() if f == name)
        env[primary] = str(value).lower() if isinstance(value, bool) else str(value)
    env["STORAGE_BACKEND"] = settings.backend
    return env


def target_settings(
    source: StorageSettings,
    *,
    env_file: str | Path | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> StorageSettings:
    """The target's settings: the env file's values (or, without one, the source's), with
    ``overrides`` (environment names; ``None`` or ``""`` removes a variable) on top."""
    if env_file is not None:
        values = read_env_file(env_file)
        origin = str(env_file)
    else:
        values = settings_as_env(source)
        origin = "the current settings and the --to-* options"
    for name, value in (overrides or {}).items():
        if value is None or value == "":
            values.pop(name, None)
        else:
            values[name] = value
    if overrides:
        origin = f"{env_file} and the --to-* options" if env_file is not None else origin
    return settings_from_values(values, origin=origin)


def mask(name: str, value: str) -> str:
    """A value fit to print: secrets hidden entirely, key ids reduced to their first 4 chars."""
    if name in SECRET_NAMES:
        return "********"
    if name in KEY_ID_NAMES:
        return value[:4] + "********" if len(value) > 8 else "********"
    return value


def switch_variables(
    source: StorageSettings, target: StorageSettings
) -> list[tuple[str, str | None]]:
    """(name, masked new value, or None to unset) for every location or credential variable
    that differs between the two settings."""
    old, new = settings_as_env(source), settings_as_env(target)
    changes: list[tuple[str, str | None]] = []
    for name in LOCATION_NAMES:
        if old.get(name) == new.get(name):
            continue
        changes.append((name, mask(name, new[name]) if name in new else None))
    return changes


def check_distinct(source: StorageSettings, target: StorageSettings) -> None:
    """Refuse a target that is the source, or lies inside or around it in the same bucket."""
    if (
        source.effective_endpoint != target.effective_endpoint
        or source.bucket_name != target.bucket_name
    ):
        return
    a, b = source.prefix, target.prefix
    if a == b or not a or not b or a.startswith(b + "/") or b.startswith(a + "/"):
        where = f"bucket {target.bucket_name}" + (f" prefix {b}" if b else "")
        raise ConfigError(
            f"the target ({where}) overlaps the source (prefix {a or '(none)'}) in the same "
            "bucket: choose another bucket or a prefix beside the source's"
        )


def same_account(source: StorageSettings, target: StorageSettings) -> bool:
    """True when one set of credentials reaches both sides at one endpoint (server-side copy)."""
    return (
        source.effective_endpoint == target.effective_endpoint
        and source.effective_region == target.effective_region
        and source.credentials() == target.credentials()
    )
