"""Local paths and fsspec URLs (s3://, gs://, memory://) behind one small interface.

Credentials never appear in a URL here: s3fs (through botocore) reads AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_ENDPOINT_URL from the environment; fsspec
reads FSSPEC_S3_ENDPOINT_URL (and any FSSPEC_<PROTOCOL>_<KEY>) itself. We only add the
endpoint explicitly, so an S3-compatible server (MinIO, moto, Ceph) works with either name.
"""

from __future__ import annotations

import os
import re
from typing import Any, overload

import fsspec


def is_url(location: object) -> bool:
    """True for ``proto://...`` other than ``file://`` (which is a local path)."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def storage_options(url: str) -> dict[str, Any]:
    """Options for ``fsspec``/``zarr``/``dask`` for ``url``: the S3 endpoint from the
    environment, and listings never cached (other processes write the same store)."""
    options: dict[str, Any] = {}
    if url.startswith(("s3://", "s3a://")):
        endpoint = os.environ.get("FSSPEC_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        options["use_listings_cache"] = False
    return options


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for ``url`` and the path inside it (no protocol)."""
    protocol = url.split("://", 1)[0]
    fs = fsspec.filesystem(protocol, **storage_options(url))
    return fs, fs._strip_protocol(url).rstrip("/")


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:token|key|secret|password|signature|x-amz-[a-z-]+)=)[^&\s]+")


@overload
def redact(uri: str) -> str: ...
@overload
def redact(uri: None) -> None: ...
def redact(uri: str | None) -> str | None:
    """A URI without credentials (user:password@, token/key/secret query values), for
    logs, messages and MLflow tags."""
    if uri is None:
        return None
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", uri))
