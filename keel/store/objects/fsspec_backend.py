"""The fsspec side of remote stores: open a URL's filesystem with keel's settings, and say in
one line what its errors mean and what to set or check.

fsspec (and s3fs, through fsspec's registry) is imported here on first use, and only here and
in :mod:`keel.store.objects.remote`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from keel.errors import MissingExtra, UserError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

_FOREIGN = ("botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec", "urllib3")
_ACCESS_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}


def open_filesystem(
    url: str, environ: Mapping[str, str] | None, what: Callable[[], str]
) -> tuple[AbstractFileSystem, str]:
    """The filesystem for ``url`` and the store's root path on it.

    Raises:
        keel.errors.MissingExtra: the URL's backend package (s3fs for s3://) is not installed.
        keel.errors.UserError: a relative folder, or a protocol fsspec does not know; the
            message starts with ``what()`` (the remote's name and URL).
    """
    try:
        import fsspec
    except ImportError as exc:
        raise missing_extra(url, exc) from exc
    scheme = url.partition("://")[0].lower() if "://" in url else "file"
    if scheme == "file" and not Path(url.removeprefix("file://")).is_absolute():
        raise UserError(f"{what()}: a folder remote needs an absolute path, not {url!r}")
    options: dict[str, object] = {}
    if scheme in ("s3", "s3a"):
        options = s3_options(environ)
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise missing_extra(url, exc) from exc
    except ValueError as exc:
        raise UserError(
            f"{what()}: unknown protocol '{scheme}' ({exc}); use s3://bucket/prefix, a folder "
            "path, or another fsspec URL whose package is installed"
        ) from exc
    return fs, str(root)


def s3_options(environ: Mapping[str, str] | None) -> dict[str, object]:
    """s3fs settings: never share cached instances or listings, and read the given variables."""
    options: dict[str, object] = {"skip_instance_cache": True, "use_listings_cache": False}
    env = environ or {}
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options["key"] = env["AWS_ACCESS_KEY_ID"]
        options["secret"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            options["token"] = env["AWS_SESSION_TOKEN"]
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


def error_code(exc: BaseException) -> str:
    """The S3 error code behind a translated exception ('' when there is none)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        seen = seen.__cause__
    return ""


def is_backend_error(exc: BaseException) -> bool:
    """True for an exception raised by the storage backend's packages (not a keel bug)."""
    return type(exc).__module__.partition(".")[0] in _FOREIGN


def missing_extra(url: str, exc: ImportError) -> MissingExtra:
    """The error for a backend package that is not installed, naming the extra to install."""
    return MissingExtra(
        f"remote {url} needs a package that is not installed ({exc}); "
        "install it with `pip install 'keel[s3]'`"
    )


def describe(what: str, action: str, path: str, exc: BaseException) -> str:
    """One line: what failed, where, why, and what to set or check."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    kind = type(exc).__name__
    code = error_code(exc)
    if "Credentials" in kind:
        hint = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        return f"{what}: no usable credentials ({reason}); {hint}"
    if isinstance(exc, PermissionError) or code in _ACCESS_CODES:
        return (
            f"{what} refused to {action} {path} ({reason}); check the credentials "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and their permissions"
        )
    if "Connect" in kind or "Timeout" in kind or isinstance(exc, ConnectionError):
        return (
            f"cannot reach {what} ({reason}); check the network and the endpoint "
            "(AWS_ENDPOINT_URL for S3-compatible servers)"
        )
    if "Validation" in kind:
        return f"{what}: {reason}; fix the remote's URL (`remotes:` in keel.yaml)"
    return f"cannot {action} {path} ({what}): {reason}; check that the remote is reachable"
