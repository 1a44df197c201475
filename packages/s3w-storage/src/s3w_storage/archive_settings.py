"""Archive-grade storage settings: encryption at rest, storage classes and retention locks."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

_CLASS = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_SSE = {"none": "none", "aes256": "AES256", "aws:kms": "aws:kms"}


class ArchiveSettings(BaseSettings):
    """The fields :class:`~s3w_storage.settings.StorageSettings` inherits for encryption,
    storage classes and object lock (README: "Archive-grade storage")."""

    sse: Literal["none", "AES256", "aws:kms"] = Field(
        default="none", validation_alias=AliasChoices("PM_S3_SSE")
    )
    sse_kms_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("PM_S3_SSE_KMS_KEY_ID")
    )
    sse_c_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PM_S3_SSE_C_KEY")
    )
    storage_class: str | None = Field(
        default=None, validation_alias=AliasChoices("PM_S3_STORAGE_CLASS")
    )
    docvers_storage_class: str | None = Field(
        default=None, validation_alias=AliasChoices("PM_S3_DOCVERS_STORAGE_CLASS")
    )
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = Field(
        default=None, validation_alias=AliasChoices("PM_S3_OBJECT_LOCK_MODE")
    )
    retention_days: int | None = Field(
        default=None, ge=1, le=36_500, validation_alias=AliasChoices("PM_S3_RETENTION_DAYS")
    )

    @field_validator("sse", mode="before")
    @classmethod
    def _sse(cls, value: object) -> object:
        if isinstance(value, str):
            name = _SSE.get(value.strip().lower())
            if name is None:
                raise ValueError(f"{value!r} is not an encryption: use none, AES256 or aws:kms")
            return name
        return value

    @field_validator("sse_c_key", mode="before")
    @classmethod
    def _sse_c_key(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            try:
                raw = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                # The value is a secret: the message never repeats it.
                raise ValueError(
                    "is not the base64 of a 256-bit key (32 bytes); "
                    "make one with: openssl rand -base64 32"
                )
            return value.strip()
        return value

    @field_validator("storage_class", "docvers_storage_class", mode="before")
    @classmethod
    def _storage_class(cls, value: object) -> object:
        if isinstance(value, str) and not _CLASS.fullmatch(value.strip()):
            raise ValueError(
                f"{value!r} is not a storage class name (e.g. STANDARD_IA, InfrequentAccess)"
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("object_lock_mode", mode="before")
    @classmethod
    def _lock_mode(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().upper() not in ("GOVERNANCE", "COMPLIANCE"):
                raise ValueError(f"{value!r} is not a lock mode: use GOVERNANCE or COMPLIANCE")
            return value.strip().upper()
        return value

    def archive_problems(self) -> list[str]:
        """Contradictory archive settings, one line each."""
        found: list[str] = []
        if self.sse_c_key is not None and self.sse != "none":
            found.append(
                f"PM_S3_SSE_C_KEY and PM_S3_SSE={self.sse} exclude each other: "
                "an object is encrypted with the customer key or by the store, not both"
            )
        if self.sse_kms_key_id and self.sse != "aws:kms":
            found.append("PM_S3_SSE_KMS_KEY_ID needs PM_S3_SSE=aws:kms")
        if (self.object_lock_mode is None) != (self.retention_days is None):
            found.append(
                "PM_S3_OBJECT_LOCK_MODE and PM_S3_RETENTION_DAYS go together: set both, or neither"
            )
        return found
