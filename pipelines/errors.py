"""Turn any failure of a sync into the one line a user reads.

dlt wraps what a resource raises (PipelineStepFailed -> ResourceExtractionError -> our error)
and its config errors span a dozen lines; a scheduled job's log wants the root cause and the fix.
"""

from __future__ import annotations

from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigValueCannotBeCoercedException,
)

from sources.caspio import CaspioError, exception_chain


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def describe_error(exc: BaseException) -> str:
    """One line naming the problem and the fix; the Caspio error wins over dlt's wrappers."""
    causes = list(exception_chain(exc))
    for cause in causes:
        if isinstance(cause, CaspioError):
            return _first_line(str(cause))
    for cause in causes:
        if isinstance(cause, ConfigFieldMissingException):
            keys = ", ".join(cause.fields)
            return (
                f"missing configuration: {keys}. Set them in .dlt/secrets.toml under "
                "[sources.caspio.credentials] or as SOURCES__CASPIO__CREDENTIALS__<KEY> "
                "environment variables (see .dlt/secrets.toml.example)"
            )
    for cause in causes:
        if isinstance(cause, ConfigValueCannotBeCoercedException):
            return (
                f"invalid configuration value {cause.field_name}={cause.field_value!r}: "
                f"expected {_hint_name(cause.hint)}; fix it in .dlt/config.toml "
                f"[sources.caspio] or the SOURCES__CASPIO__{cause.field_name.upper()} "
                "environment variable"
            )
    innermost = causes[-1]
    message = _first_line(str(innermost)) or type(innermost).__name__
    return f"{type(innermost).__name__}: {message}"


def _hint_name(hint: object) -> str:
    """`int`, `bool`, `dict[str, dict[str, Any]]`: what a user should write, not a repr."""
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
