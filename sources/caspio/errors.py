"""User-facing errors. Each message names the problem *and* the fix, on one line.

The pipeline layer prints ``str(error)`` without a traceback, so messages must stand alone.
Messages never contain tokens or secrets: the client only ever passes Caspio's own error body
(code, message, request id) and the URL path into them.
"""

from collections.abc import Iterable, Iterator


class CaspioError(Exception):
    """Base of every error raised by the Caspio source."""


class CaspioConfigError(CaspioError, ValueError):
    """A configuration value is missing or malformed (credentials, table options, cursor...)."""


class CaspioTokenCacheError(CaspioError):
    """The on-disk token cache is unsafe (readable by others) or unusable."""


class CaspioApiError(CaspioError):
    """Caspio answered with an error the connector cannot recover from."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.request_id = request_id
        suffix = f" (request id {request_id})" if request_id else ""
        super().__init__(message + suffix)


class CaspioAuthError(CaspioApiError):
    """Wrong client id / secret, or a token Caspio keeps refusing."""


class CaspioPermissionError(CaspioApiError):
    """403: IP not allowed, plain http refused, or the profile may not read the object."""


class CaspioQuotaExceededError(CaspioApiError):
    """The account's monthly API call quota is spent. Never retried: retries would cost money."""


class CaspioObjectNotFoundError(CaspioApiError):
    """A table, view or field does not exist (or the profile cannot see it)."""


class CaspioQueryRejectedError(CaspioApiError):
    """Caspio refused a query (SqlServerError / IncorrectQueryParameter)."""


class CaspioNotJsonError(CaspioApiError):
    """The answer was HTML or otherwise not JSON: usually a wrong subdomain or integration URL."""


class CaspioUnavailableError(CaspioApiError):
    """Retries were exhausted (sustained outage, throttling or timeouts)."""


class CaspioDesignChangeError(CaspioConfigError):
    """A loaded field changed type in Caspio: its destination column cannot take the values."""


class CaspioUnknownObjectError(CaspioConfigError):
    """A table or view name (or glob) that matches nothing; ``missing`` and ``available`` let
    a caller suggest the closest name."""

    def __init__(self, message: str, missing: list[str], available: list[str]) -> None:
        super().__init__(message)
        self.missing = missing
        self.available = available


def unknown_objects_error(
    missing: Iterable[str], available: Iterable[str], kind: str = "table or view"
) -> CaspioConfigError:
    """Builds the error for names/globs that match nothing, listing what does exist."""
    names = list(missing)
    missing_s = ", ".join(repr(m) for m in names)
    avail = sorted(available)
    shown = ", ".join(avail[:50]) + (f", ... ({len(avail)} in all)" if len(avail) > 50 else "")
    return CaspioUnknownObjectError(
        f"Unknown Caspio {kind} {missing_s}: the account (as this API profile sees it) has "
        f"{shown or 'no tables or views'}; fix the name in `tables` or grant the profile access",
        names,
        avail,
    )


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps, outermost first, each once: causes and contexts,
    dlt's wrapped ``exception``, urllib3's ``reason`` and an exception passed as first arg."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        first_arg = current.args[0] if current.args else None
        todo.extend(
            [
                getattr(current, "exception", None),
                current.__cause__,
                current.__context__,
                getattr(current, "reason", None),
                first_arg,
            ]
        )
