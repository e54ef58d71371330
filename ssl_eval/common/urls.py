"""Local paths and fsspec URLs (s3://, gs://, memory://) behind one small interface.

Credentials never appear in a URL here: s3fs (through botocore) reads AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_ENDPOINT_URL from the environment; fsspec
reads FSSPEC_S3_ENDPOINT_URL (and any FSSPEC_<PROTOCOL>_<KEY>) itself. We only add the
endpoint explicitly, so an S3-compatible server (MinIO, moto, Ceph) works with either name.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, overload

import fsspec

from ssl_eval.common.safe_text import printable


def is_url(location: object) -> bool:
    """True for ``proto://...`` other than ``file://`` (which is a local path).

    Args:
        location: a path or URL (any object; its ``str`` is read).

    Returns:
        Whether it is a remote (fsspec) URL.
    """
    text = str(location)
    return "://" in text and not text.startswith("file://")


def storage_options(url: str) -> dict[str, Any]:
    """Options for ``fsspec``/``zarr``/``dask`` for ``url``.

    The S3 endpoint from the environment, and listings never cached (other processes write the same store).

    Args:
        url: an fsspec URL.

    Returns:
        The options (empty for protocols other than S3).
    """
    options: dict[str, Any] = {}
    if url.startswith(("s3://", "s3a://")):
        endpoint = os.environ.get("FSSPEC_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        options["use_listings_cache"] = False
    return options


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for ``url`` and the path inside it (no protocol).

    Args:
        url: an fsspec URL.

    Returns:
        (the fsspec filesystem, the path without protocol or trailing ``/``).
    """
    protocol = url.split("://", 1)[0]
    fs = fsspec.filesystem(protocol, **storage_options(url))
    return fs, fs._strip_protocol(url).rstrip("/")


def join(base: str, *parts: str) -> str:
    """``base`` and ``parts`` joined by single slashes (URL or path text; empty parts skipped).

    Args:
        base: a URL or path.
        *parts: the parts to append.

    Returns:
        The joined text.
    """
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


# user:password@ up to the authority's last "@" (a password may hold "@"), and, where a
# "user:" is followed by a "/" before an "@", up to that "@" too (an unescaped "/" in a
# password): over-redacting a path is harmless, leaking a password is not.
_USERINFO = re.compile(r"(?<=://)(?:[^/?#\s@]*@)+|(?<=://)[^/?#\s:@]+:[^\s@]*@")
# a query, fragment or key=value pair whose name says secret: token, api_token,
# access_token, key, apikey, secret, password, pwd, sig, signature, credential, auth,
# session, X-Amz-Signature, X-Amz-Security-Token, X-Amz-Credential, ... (S105: a pattern that finds secrets, not one)
_SECRET_NAME = r"[^=&#;\s?]*(?:token|key|secret|pass|pwd|sig|credential|auth|session|x-amz-)[^=&#;\s]*"  # noqa: S105
_SECRET_QUERY = re.compile(rf"(?i)((?:^|[?&#;\s,(\[{{'\"])(?:{_SECRET_NAME})=)[^&#;\s'\")\]}}]+")


def redact_text(text: str) -> str:
    """``text`` with every credential in it replaced by ``***``.

    The user:password@ part of any URL in it, and the value of any parameter named like a
    secret (``?api_token=``, ``&X-Amz-Signature=``, ``#access_token=``, ``password=``). For
    messages, logs and records that may quote a URL.

    Args:
        text: any text.

    Returns:
        The redacted text.
    """
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", text))


@overload
def redact(uri: str) -> str: ...
@overload
def redact(uri: None) -> None: ...
def redact(uri: str | None) -> str | None:
    """A URI without credentials (see :func:`redact_text`), for logs, messages, records, MLflow tags and flow parameters.

    Args:
        uri: a URI, or None.

    Returns:
        The redacted URI; None for None.
    """
    if uri is None:
        return None
    return redact_text(uri)


def has_credentials(uri: str | None) -> bool:
    """Whether ``uri`` carries credentials (anything :func:`redact` would hide).

    Args:
        uri: a URI, or None.

    Returns:
        True when redacting changes it.
    """
    return uri is not None and redact(uri) != uri


#: Where the CLI holds a tracking URI that carries credentials, so that flows and tasks get
#: only its redacted form as a parameter (Prefect stores parameters in its database) and the
#: task that talks to MLflow reads the real one here, in the process that uses it (served
#: flow runs are child processes and inherit it).
HELD_URI_ENV = "SSL_EVAL_HELD_TRACKING_URI"


def hold_credentials(uri: str | None) -> str | None:
    """The form of ``uri`` safe to pass as a flow or task parameter.

    ``uri`` itself when it carries no credentials; else its redacted form, the full URI held
    in this process's environment (``SSL_EVAL_HELD_TRACKING_URI``) for :func:`with_credentials`.

    Args:
        uri: a tracking URI, or None.

    Returns:
        The URI to pass on.
    """
    if uri is None or not has_credentials(uri):
        return uri
    os.environ[HELD_URI_ENV] = uri
    return redact(uri)


def with_credentials(public: str | None) -> str | None:
    """The held URI whose redacted form is ``public``, else ``public`` as it is.

    Args:
        public: a URI as passed by :func:`hold_credentials`, or None.

    Returns:
        The full URI to connect with.
    """
    held = os.environ.get(HELD_URI_ENV)
    return held if held and public is not None and redact(held) == public else public


def install_log_redaction() -> None:
    """Redact credentials and escape terminal codes in every log record this process makes. Idempotent.

    Credentials (:func:`redact_text`) are removed from the message and traceback before any handler
    (terminal, Prefect's API log handler, files) sees it; terminal control codes in messages are
    shown as escapes (:func:`ssl_eval.common.safe_text.printable`; line breaks kept).
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_credentials", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the logging module's to report
            return record
        # credentials redacted; control codes (from store names in a message) shown as escapes
        clean = printable(redact_text(message), newlines=True)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if redact_text(text) != text:
                record.exc_text = redact_text(text)
        return record

    factory.redacts_credentials = True  # type: ignore[attr-defined]  # a marker on the function: installed once
    logging.setLogRecordFactory(factory)
