"""What the AWS shared config files say to s3w (a profile's S3 endpoint, CA bundle and
region), read through botocore only when such a file exists."""

from __future__ import annotations

import os


def shared_config_present() -> bool:
    """Whether an AWS shared config or credentials file exists (where botocore reads it):
    without one a profile has nothing to say, and botocore need not be loaded to ask."""
    files = (
        os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config",
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials",
    )
    return any(os.path.isfile(os.path.expanduser(path)) for path in files)


def profile_endpoint() -> tuple[str, str] | None:
    """The ``endpoint_url`` the AWS profile gives S3 (its ``services`` section first), and
    which profile: boto3 would use it when no variable names an endpoint."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    if not shared_config_present():
        return None
    import botocore.session
    from botocore.exceptions import BotoCoreError

    session = botocore.session.Session()
    try:
        scoped = session.get_scoped_config()
        full = session.full_config
    except BotoCoreError:
        return None
    name = session.profile or "default"
    services = scoped.get("services")
    if isinstance(services, str):
        section = full.get("services", {}).get(services, {}).get("s3", {})
        if isinstance(section, dict) and section.get("endpoint_url"):
            return str(section["endpoint_url"]), f"profile {name} (services {services})"
    if scoped.get("endpoint_url"):
        return str(scoped["endpoint_url"]), f"profile {name}"
    return None


def profile_value(name: str) -> str | None:
    if not shared_config_present():
        return None
    import botocore.session
    from botocore.exceptions import BotoCoreError

    try:
        value = botocore.session.Session().get_scoped_config().get(name)
    except BotoCoreError:
        return None
    return str(value) if value else None


def profile_region() -> str | None:
    import botocore.session

    region = botocore.session.Session().get_config_variable("region")
    return str(region) if region else None
