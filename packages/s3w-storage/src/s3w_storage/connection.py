"""How every client reaches the store: the one function that decides endpoint, region,
addressing, TLS, CA bundle, proxies, timeouts and retries for the data plane (obstore) and
for boto3 (presigning, control-plane calls) alike."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from s3w_storage.profiles import profile_region, profile_value

if TYPE_CHECKING:
    from s3w_storage.settings import StorageSettings


@dataclass(frozen=True)
class Connection:
    """Everything about the way to the store, derived once from the settings."""

    #: The endpoint URL, or None for AWS's regional endpoint (then ``region`` decides).
    endpoint: str | None
    #: Where the endpoint came from (an environment name, a profile, the default).
    endpoint_source: str
    region: str
    #: Virtual-hosted addressing (``bucket.host``) instead of path style (``host/bucket``).
    virtual_hosted: bool
    allow_http: bool
    #: A PEM file of extra CA certificates (``AWS_CA_BUNDLE`` or the profile's ``ca_bundle``).
    ca_bundle: str | None
    #: The proxy for the endpoint's scheme (``HTTPS_PROXY``, ``HTTP_PROXY``) and ``NO_PROXY``.
    proxy: str | None
    no_proxy: str | None
    connect_timeout: float
    read_timeout: float
    max_attempts: int

    @property
    def url(self) -> str:
        """The endpoint actually reached (AWS's regional one when none is configured)."""
        return self.endpoint or f"https://s3.{self.region}.amazonaws.com"


def connection_for(settings: StorageSettings) -> Connection:
    """The one answer to "how do we reach the store" for ``settings``."""
    endpoint, source = settings.endpoint_and_source
    region = settings.effective_region or profile_region() or "us-east-1"
    style = settings.effective_addressing_style
    url = endpoint or f"https://s3.{region}.amazonaws.com"
    scheme = urlsplit(url).scheme or "https"
    host = urlsplit(url).hostname or ""
    proxy, no_proxy = _proxy_for(scheme, host)
    return Connection(
        endpoint=endpoint,
        endpoint_source=source,
        region=region,
        virtual_hosted=style == "virtual" or (style == "auto" and endpoint is None),
        allow_http=scheme == "http",
        ca_bundle=os.environ.get("AWS_CA_BUNDLE") or profile_value("ca_bundle"),
        proxy=proxy,
        no_proxy=no_proxy,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_attempts=settings.max_attempts,
    )


def _proxy_for(scheme: str, host: str) -> tuple[str | None, str | None]:
    """The proxy the environment names for ``scheme`` as botocore reads it, unless
    ``NO_PROXY`` exempts ``host``."""
    from urllib.request import getproxies, proxy_bypass

    found = getproxies()
    url = found.get(scheme) or found.get("all")
    if not url or proxy_bypass(host):
        return None, None
    if "://" not in url:
        url = "http://" + url
    kind = urlsplit(url).scheme
    if kind not in ("http", "https"):
        from s3w_storage.errors import ConfigError

        raise ConfigError(
            f"proxy {kind}://{urlsplit(url).hostname}: only http:// and https:// proxies "
            "are supported; set HTTPS_PROXY/HTTP_PROXY to one"
        )
    return url, found.get("no")
