"""No secret printed, logged or left in a file: every credential this process could know, masked.

Where secrets come from: environment variables whose name says they hold one
(``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``, ``*PRIVATE_KEY*``, ``*__CREDENTIALS``: the password
of a connection string, the secret keys of a JSON value) and the same keys in every
``secrets.toml`` / ``config.toml`` dlt reads. What is masked: those values wherever they
appear, and any ``user:password@`` of a URL (a connection string that did not parse still
holds its password). Why here and not in each message: dlt, SQLAlchemy and drivers repeat a
malformed value verbatim in their errors, traces and logs; the CLI cannot reword them all,
so it masks everything it prints, logs, and what the run wrote into the pipeline's folder.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: masking every "abc" in a log would hide more than it keeps."""
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE_KEY|PASSPHRASE|API_KEY", re.IGNORECASE)
NOT_A_SECRET = re.compile(r"(_DIR|_PATH|_FILE|_CACHE|_URL|_ENDPOINT)$", re.IGNORECASE)
"""Names that hold where a secret lives (``SOURCES__CASPIO__TOKEN_CACHE_DIR``), not one."""
URL_PASSWORD = re.compile(r"(?P<user>[\w.+%~-]+):(?P<password>[^@\s/'\"]+)@(?=[\w.\[\]-])")
"""``user:password@host`` with or without a scheme (``postgresql//u:p@h`` included)."""


def config_files() -> list[Path]:
    """The TOML files dlt reads: the project's ``.dlt/`` and the global dlt directory."""
    dirs = [Path.cwd() / ".dlt"]
    data_dir = os.environ.get("DLT_DATA_DIR")
    dirs.append(Path(data_dir) if data_dir else Path.home() / ".dlt")
    if not data_dir and hasattr(os, "geteuid") and os.geteuid() == 0:
        dirs.append(Path("/var/dlt"))  # dlt's global directory when run as root
    project = os.environ.get("DLT_PROJECT_DIR")
    if project:
        dirs.insert(0, Path(project) / ".dlt")
    return [d / name for d in dirs for name in ("secrets.toml", "config.toml")]


def _secrets_in(value: Any, name: str = "") -> Iterator[str]:
    """The secret strings of one configuration value found under ``name``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _secrets_in(item, f"{name}__{key}")
        return
    if not isinstance(value, str) or not value:
        return
    for match in URL_PASSWORD.finditer(value):
        yield match.group("password")
    upper = name.upper()
    if SECRET_NAME.search(upper) and not NOT_A_SECRET.search(upper):
        yield value
    elif upper.endswith("CREDENTIALS") and value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return
        yield from _secrets_in(parsed, name)


def _toml_secrets(path: Path) -> Iterator[str]:
    import tomllib

    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return
    yield from _secrets_in(data)


@functools.lru_cache(maxsize=1)
def _cached_secrets(fingerprint: tuple[Any, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for name, value in os.environ.items():
        found.update(_secrets_in(value, name))
    for path in config_files():
        found.update(_toml_secrets(path))
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def known_secrets() -> tuple[str, ...]:
    """Every secret value of the environment and the TOML files (longest first)."""
    fingerprint: list[Any] = [tuple(sorted(os.environ.items()))]
    for path in config_files():
        try:
            fingerprint.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            fingerprint.append((str(path), None))
    return _cached_secrets(tuple(fingerprint))


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every URL password masked."""
    for secret in (*known_secrets(), *extra):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return URL_PASSWORD.sub(lambda m: f"{m.group('user')}:{MASK}@", text)


def install_log_redaction() -> None:
    """Every log record of every logger (dlt's, the source's, drivers') masked when created,
    its traceback included, whatever handler or format prints it later."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logged as given
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    redacting_factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


def scrub_files(root: Path) -> list[Path]:
    """Mask known secrets in dlt's run traces under ``root`` in place, byte for byte: each
    secret becomes as many ``*``, so the pickle's length-prefixed strings stay valid. Returns
    the files changed.

    Only the traces: dlt writes a failed step's exception text there (a malformed connection
    string with its password, repeated by the driver). State, schemas and load packages hold
    the user's data and the connector's own keys: masking a password that happens to be a
    word ("postgres") there would corrupt them, and nothing of ours writes a secret there
    (tests/cli checks it)."""
    secrets = [s.encode("utf-8") for s in known_secrets()]
    changed: list[Path] = []
    if not secrets or not root.is_dir():
        return changed
    for path in root.rglob("trace.pickle"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        new = data
        for secret in secrets:
            if secret in new:
                new = new.replace(secret, b"*" * len(secret))
        if new != data:
            path.write_bytes(new)
            changed.append(path)
    return changed
