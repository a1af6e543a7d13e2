"""Turn any failure of a sync into the one line a user reads: the setting and the fix.

dlt wraps what a resource raises (PipelineStepFailed -> ResourceExtractionError -> our error)
and its config errors span a dozen lines; a scheduled job's log wants the root cause, where it
is set (the TOML file and line, the environment variable), and what to write instead. Every
line is masked (``redact.py``): a malformed connection string is never repeated with its
password.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigValueCannotBeCoercedException,
    LookupTraces,
)

from sources.caspio import CaspioConfigError, CaspioError, exception_chain

from .redact import config_files, redact


class CliError(Exception):
    """A problem the command line found itself (a bad environment value): already one line."""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def describe_error(exc: BaseException, destination: str | None = None) -> str:
    """One line naming the problem and the fix; the Caspio error wins over dlt's wrappers."""
    return redact(_describe(list(exception_chain(exc)), destination))


def _describe(causes: list[BaseException], destination: str | None) -> str:
    for cause in causes:
        if isinstance(cause, CliError):
            return _first_line(str(cause))
    for cause in causes:
        if isinstance(cause, CaspioError):
            return _caspio_error(cause)
    for cause in causes:
        if isinstance(cause, ConfigFieldMissingException):
            return _missing(cause)
    for cause in causes:
        if isinstance(cause, ConfigValueCannotBeCoercedException):
            where = where_set(cause.field_name) or "its setting"
            return (
                f"invalid configuration value {cause.field_name}={cause.field_value!r}: "
                f"expected {_hint_name(cause.hint)}; fix it in {where}"
            )
    for cause in causes:
        text = _known_library_error(cause, destination)
        if text:
            return text
    innermost = causes[-1]
    message = _first_line(str(innermost)) or type(innermost).__name__
    return f"{type(innermost).__name__}: {message}"


def _caspio_error(error: CaspioError) -> str:
    line = _first_line(str(error))
    unknown = re.match(r"Unknown Caspio [\w ]+? ((?:'[^']*'(?:, )?)+): .*? has (.*?); fix", line)
    if unknown:
        names = re.findall(r"'([^']*)'", unknown.group(1))
        available = [a.strip() for a in unknown.group(2).split(",")]
        hints = [_did_you_mean(name, available) for name in names]
        line += "".join(h for h in hints if h)
    if isinstance(error, CaspioConfigError):
        key = re.match(r"(\w+) must be", line)
        where = where_set(key.group(1)) if key else None
        if where:
            line += f"; it is set in {where}"
    return line


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def _leaf_traces(traces: Any) -> Iterator[tuple[str, list[Any]]]:
    """(field, lookups) of every missing leaf field, through embedded configurations."""
    for field, lookups in traces.items():
        nested = [t for t in lookups if isinstance(t, LookupTraces)]
        if nested:
            for inner in nested:
                yield from _leaf_traces(inner.traces)
        else:
            yield field, list(lookups)


def _missing(cause: ConfigFieldMissingException) -> str:
    leaves = list(_leaf_traces(cause.traces))
    fields = [field for field, _ in leaves] or list(cause.fields)
    sections: list[str] = []
    for _, lookups in leaves:
        if lookups and getattr(lookups[0], "sections", None):
            sections = list(lookups[0].sections)
            break
    keys = ", ".join(fields)
    if not sections:
        return f"missing configuration: {keys}; set it in .dlt/secrets.toml or the environment"
    table = ".".join(sections)
    env = "__".join(s.upper() for s in sections)
    variables = ", ".join(f"{env}__{f.upper()}" for f in fields)
    text = (
        f"missing configuration: {keys} of [{table}]; set them in .dlt/secrets.toml under "
        f"[{table}] or as environment variables {variables}"
    )
    if sections[0] == "destination" and len(sections) > 1:
        name = sections[1]
        text += (
            f" (or the whole connection string as {env}, e.g. "
            f"{name}://user:password@host:port/database)"
        )
    elif sections[:2] == ["sources", "caspio"]:
        text += " (see .dlt/secrets.toml.example)"
    return text


def _known_library_error(cause: BaseException, destination: str | None) -> str | None:
    name = type(cause).__name__
    text = _first_line(str(cause))
    if name == "UnknownDestinationModule":
        from dlt import destinations

        ref = str(getattr(cause, "ref", "") or destination or "")
        known = [d for d in destinations.__all__ if d != "destination"]
        return (
            f"unknown destination {ref!r}{_did_you_mean(ref, known)}: use one of "
            f"{', '.join(sorted(known))} (--destination), with its extra installed"
        )
    from tomlkit.exceptions import ParseError

    if isinstance(cause, ParseError):
        return _toml_error(cause)
    if "Could not parse SQLAlchemy URL" in text:
        var = _credentials_variable(destination)
        return (
            f"the connection string in {var} is not a valid URL: write it as "
            f"{destination or 'postgres'}://user:password@host:port/database (or set the "
            f"[destination.{destination or 'postgres'}.credentials] keys one by one)"
        )
    module = type(cause).__module__.split(".")[0]
    if module in {"psycopg2", "psycopg", "snowflake", "google", "pyodbc", "sqlalchemy"}:
        return (
            f"{name}: {text}; check the destination's settings under "
            f"[destination.{destination or '<name>'}.credentials] in .dlt/secrets.toml "
            f"or {_credentials_variable(destination)}"
        )
    return None


def _credentials_variable(destination: str | None) -> str:
    return f"DESTINATION__{(destination or '<NAME>').upper()}__CREDENTIALS"


def _toml_error(cause: BaseException) -> str:
    """A TOML syntax error, with the file it is in (dlt's message names none)."""
    import tomlkit

    message = _first_line(str(cause))
    for path in config_files():
        try:
            tomlkit.parse(path.read_text("utf-8"))
        except OSError:
            continue
        except Exception as exc:  # noqa: BLE001 - any parse error of this file is the one
            return f"{path} is not valid TOML: {_first_line(str(exc))}; fix that line"
    return f"a .dlt TOML file is not valid TOML: {message}; fix that line"


def _hint_name(hint: object) -> str:
    """`int`, `bool`, `dict[str, dict[str, Any]]`: what a user should write, not a repr."""
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def where_set(key: str) -> str | None:
    """Where a ``[sources.caspio]`` setting is set: its environment variable or TOML file."""
    upper = key.upper()
    for name in os.environ:
        if name.endswith(f"__{upper}") and "SOURCES__" in name:
            return f"the environment variable {name}"
    for path in config_files():
        line = _toml_line(path, key)
        if line is not None:
            return f"{path} (line {line})"
    return None


def _toml_line(path: Path, key: str) -> int | None:
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError:
        return None
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    return next((i for i, line in enumerate(lines, 1) if pattern.match(line)), None)


JSON_SETTINGS = ("SOURCES__CASPIO__CREDENTIALS", "SOURCES__CASPIO__TABLE_OPTIONS")


def check_environment() -> None:
    """Values dlt would misread without a useful error: JSON settings that are not JSON."""
    for name in JSON_SETTINGS:
        value = os.environ.get(name)
        if value is None or not value.strip():
            continue
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise CliError(
                f"the environment variable {name} is not valid JSON ({exc}); write a JSON "
                "object, or set one variable per key (e.g. SOURCES__CASPIO__CREDENTIALS__"
                "CLIENT_ID)"
            ) from None
        if name.endswith("CREDENTIALS") and not isinstance(parsed, dict):
            raise CliError(
                f"the environment variable {name} must be a JSON object with client_id, "
                "client_secret and integration_url; or set SOURCES__CASPIO__CREDENTIALS__<KEY>"
            )
