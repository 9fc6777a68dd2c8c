"""What a job spec may touch on this coordinator: its data roots, the model names jobs may
register, and who may force an alias move.

Each check is a pure function of the settings and the validated spec; a refusal is a
:class:`SpecRefused` naming the spec's field, which the API answers with its status.
Paths are judged by their text (normalised, never looked up outside the roots), so a refusal
says nothing about which files exist.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from scaleml.config import Settings
from scaleml.errors import ConfigError, ScalemlError

_GLOB = re.compile(r"[*?\[]")
_REDIRECT_KEY = re.compile(r"endpoint|url|host|proxy", re.IGNORECASE)
_SHOWN = 200  # characters of a client's value quoted back in a refusal


class SpecRefused(ScalemlError):
    """A valid spec this coordinator refuses: ``loc`` names the field, ``status`` is the HTTP
    status (422: not allowed here, 403: not allowed for this token)."""

    def __init__(self, loc: tuple[str, ...], message: str, status: int = 422) -> None:
        super().__init__(f"{'.'.join(loc)}: {message}")
        self.loc = loc
        self.message = message
        self.status = status


def check_binding(host: str, settings: Settings) -> None:
    """Refuse to serve on a non-loopback address without a token, unless
    ``SCALEML_COORDINATOR_ALLOW_INSECURE`` (``--allow-insecure``) says so.

    Raises:
        ConfigError: the address is reachable from other hosts and no token is set.
    """
    if settings.coordinator_token is not None or settings.coordinator_allow_insecure:
        return
    if host == "localhost" or _is_loopback(host):
        return
    raise ConfigError(
        f"the coordinator would listen on {host!r}, reachable from other hosts, without a "
        "token: set SCALEML_COORDINATOR_TOKEN, bind 127.0.0.1, or pass --allow-insecure "
        "(SCALEML_COORDINATOR_ALLOW_INSECURE=true)"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve anywhere


def data_roots(settings: Settings) -> list[str]:
    """Where job specs may read data: ``SCALEML_COORDINATOR_DATA_ROOTS``, else the data
    directory."""
    return list(settings.coordinator_data_roots) or [str(settings.data_dir)]


def check_spec(spec: Any, settings: Settings, token: str | None) -> None:
    """Refuse a validated job spec that reaches outside this coordinator's policy.

    Raises:
        SpecRefused: a dataset location outside the data roots, ``storage_options`` that
            redirect the filesystem, a model name jobs may not register, or ``promote:
            always`` from a token not allowed to force alias moves.
    """
    roots = data_roots(settings)
    single = isinstance(spec.dataset.path, str)
    paths = [spec.dataset.path] if single else spec.dataset.path
    for index, path in enumerate(paths):
        loc = ("dataset", "path") if single else ("dataset", "path", str(index))
        if not _under_roots(path, roots):
            raise SpecRefused(
                loc,
                f"{_shown(path)} is outside the coordinator's data roots "
                f"(SCALEML_COORDINATOR_DATA_ROOTS): {', '.join(roots)}",
            )
    for where in _redirecting_keys(spec.dataset.storage_options, ("dataset", "storage_options")):
        raise SpecRefused(
            where, "storage_options may not redirect the filesystem (endpoints, URLs, hosts)"
        )
    output = getattr(spec, "output", None)  # predict jobs write there
    if output is not None and not _under_roots(output, roots):
        raise SpecRefused(
            ("output",),
            f"{_shown(output)} is outside the coordinator's data roots "
            f"(SCALEML_COORDINATOR_DATA_ROOTS): {', '.join(roots)}",
        )
    report = getattr(spec, "report", None)  # validate jobs write their page there
    if report is not None and not _under_roots(report, roots):
        raise SpecRefused(
            ("report",),
            f"{_shown(report)} is outside the coordinator's data roots "
            f"(SCALEML_COORDINATOR_DATA_ROOTS): {', '.join(roots)}",
        )
    name = getattr(spec, "register_as", None)
    patterns = settings.coordinator_register_models
    if name is not None and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
        allowed = ", ".join(patterns) or "none"
        raise SpecRefused(
            ("register_as",),
            f"jobs may not register {_shown(name)} on this coordinator "
            f"(SCALEML_COORDINATOR_REGISTER_MODELS allows: {allowed})",
        )
    forcing = getattr(spec, "promote", None) == "always"
    if forcing and token not in settings.coordinator_force_tokens:
        raise SpecRefused(
            ("promote",),
            "forcing an alias move (promote: always) needs a token listed in "
            "SCALEML_COORDINATOR_FORCE_TOKENS; use 'if-better' or 'never'",
            status=403,
        )


def _under_roots(path: str, roots: list[str]) -> bool:
    if "::" in path:
        return False  # fsspec chains (simplecache::s3://...) are never accepted
    scheme, rest = _split(path)
    if scheme is None:
        return False
    if ".." in rest.replace("\\", "/").split("/"):
        return False
    for root in roots:
        root_scheme, root_rest = _split(root)
        if root_scheme != scheme or root_scheme is None:
            continue
        if scheme == "":
            if _local_under(rest, root_rest):
                return True
        elif _remote_under(rest, root_rest):
            return True
    return False


def _split(location: str) -> tuple[str | None, str]:
    """``(scheme, rest)``: ``""`` for local paths (``file://`` ones included); ``None`` for a
    ``file://`` URL naming another host."""
    if "://" not in location:
        return "", location
    scheme = location.split("://", 1)[0].lower()
    if scheme == "file":
        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            return None, location
        return "", parts.path
    return scheme, location.split("://", 1)[1]


def _local_under(path: str, root: str) -> bool:
    absolute = os.path.normpath(os.path.abspath(path))
    base = os.path.normpath(os.path.abspath(root))
    if not _inside(absolute, base):
        return False
    return _inside(_real(absolute), os.path.realpath(base))  # symlinks out of a root


def _real(path: str) -> str:
    """The real path of the part before the first glob character, the rest appended."""
    parts = path.split(os.sep)
    fixed = next((i for i, part in enumerate(parts) if _GLOB.search(part)), len(parts))
    prefix = os.sep.join(parts[:fixed]) or os.sep
    return os.path.join(os.path.realpath(prefix), *parts[fixed:])


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def _remote_under(rest: str, root: str) -> bool:
    root = root.rstrip("/")
    return rest == root or rest.startswith(root + "/")


def _redirecting_keys(value: Any, loc: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*loc, str(key)[:_SHOWN])
            if _REDIRECT_KEY.search(str(key)):
                yield here
            yield from _redirecting_keys(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _redirecting_keys(item, (*loc, str(index)))


def _shown(value: str) -> str:
    """A client's value quoted back, cut short."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")
