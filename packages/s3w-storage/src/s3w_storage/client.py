"""The S3 client factory for AWS, Cloudflare R2 and any S3-compatible endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from s3w_storage import observe, protection
from s3w_storage.connection import connection_for
from s3w_storage.perprocess import PerProcess

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client as S3Client

    from s3w_storage.settings import StorageSettings
else:
    S3Client = Any


def client_config(settings: StorageSettings, *, pool_size: int | None = None) -> Config:
    """botocore configuration from :func:`~s3w_storage.connection.connection_for` (the same
    endpoint, region, addressing, proxies, timeouts and retries as the data plane), with
    a checksum on every request that has a body and verified responses."""
    way = connection_for(settings)
    proxies = {"http": way.proxy, "https": way.proxy} if way.proxy else None
    return Config(
        region_name=way.region,
        signature_version="s3v4",
        retries={"mode": settings.retry_mode, "total_max_attempts": way.max_attempts},
        connect_timeout=way.connect_timeout,
        read_timeout=way.read_timeout,
        max_pool_connections=pool_size or settings.max_concurrency + 4,
        s3={"addressing_style": "virtual" if way.virtual_hosted else "path"},
        proxies=proxies,
        request_checksum_calculation=settings.effective_checksum,
        response_checksum_validation=settings.effective_checksum,
        user_agent_extra="s3w",
    )


def transfer_config(settings: StorageSettings) -> TransferConfig:
    """Multipart settings for large files; concurrency matches the client's pool."""
    return TransferConfig(
        multipart_threshold=settings.multipart_threshold,
        multipart_chunksize=settings.multipart_chunksize,
        max_concurrency=settings.max_concurrency,
        # Downloads are written in pieces of this size by one writer thread: 1 MiB instead
        # of 256 KiB cuts the per-piece Python overhead that limits the download rate.
        io_chunksize=1024 * 1024,
        use_threads=True,
    )


def make_client(settings: StorageSettings, *, pool_size: int | None = None) -> S3Client:
    """A new S3 client for ``settings``. Clients are not shared across processes."""
    way = connection_for(settings)
    credentials = settings.credentials()
    kwargs: dict[str, Any] = {}
    if credentials is not None:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = credentials
        kwargs["aws_session_token"] = settings.session_token()
    if way.ca_bundle:
        kwargs["verify"] = way.ca_bundle
    session = boto3.session.Session()
    client = session.client(
        "s3",
        endpoint_url=way.endpoint,
        config=client_config(settings, pool_size=pool_size),
        **kwargs,
    )
    protection.attach(client, settings)  # encryption, storage class, object lock
    return observe.attach(client)


def credential_chain_method() -> str | None:
    """Where boto3's default credential chain finds credentials (``env``, ``shared-credentials-file``,
    ``iam-role``, ...), or None when it finds none; never the credentials themselves."""
    found = boto3.session.Session().get_credentials()
    return None if found is None else str(found.method)


def _client_from_environment() -> S3Client:
    from s3w_storage.settings import get_settings

    return make_client(get_settings())


#: The process's client from :func:`s3w_storage.settings.get_settings`; ``cache_clear()`` resets.
get_client: PerProcess[S3Client] = PerProcess(_client_from_environment)
