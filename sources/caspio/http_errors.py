"""Caspio's answers -> our errors: which failures are final, and the message that names the fix.

Kept apart from the client's retry loop so the loop reads as "send, retry, replay"; everything
here is a pure function of one answer.
"""

import datetime as dt
import email.utils
import re
from collections.abc import Callable
from typing import Any

import orjson
import requests

from .errors import (
    CaspioApiError,
    CaspioAuthError,
    CaspioNotJsonError,
    CaspioObjectNotFoundError,
    CaspioPermissionError,
    CaspioQueryRejectedError,
    CaspioQuotaExceededError,
    exception_chain,
)


def not_json_error(resp: requests.Response, host: str) -> CaspioNotJsonError:
    """An answer that is not Caspio JSON (a web page, a proxy's text): wrong host, most likely."""
    ctype = resp.headers.get("Content-Type", "no content type").split(";")[0]
    return CaspioNotJsonError(
        f"{host} answered HTTP {resp.status_code} with {ctype} instead of Caspio JSON: "
        "check the subdomain / integration URL (it should be the host shown as Token "
        "Endpoint URL on the web services profile)",
        status=resp.status_code,
    )


def api_error(
    resp: requests.Response,
    raw_body: bytes,
    body: Any,
    code: str | None,
    call: str,
    obj: str | None,
    host: str,
    redact: Callable[[str], str],
) -> CaspioApiError:
    """The user-facing error of a failed call (after retries and token replays), with the fix."""
    status = resp.status_code
    request_id = resp.headers.get("X-Caspio-Request-ID")
    if isinstance(body, dict) and isinstance(body.get("RequestId"), str):
        request_id = request_id or body["RequestId"]
    if body is None:
        if raw_body.strip() and (looks_like_html(resp, raw_body) or status in (404, 200)):
            return not_json_error(resp, host)
        if not raw_body.strip() and status == 404:
            return not_json_error(resp, host)
    message = redact(error_message(body) or resp.reason or "")
    what = f"{call} call for {obj!r}" if obj else f"{call} call"
    kw: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    if call == "token":
        if code == "invalid_client" or status == 401:
            return CaspioAuthError(
                "Caspio rejected the client id / secret (invalid_client): check "
                "SOURCES__CASPIO__CREDENTIALS__CLIENT_ID and __CLIENT_SECRET against the web "
                "services profile",
                **kw,
            )
        if code is not None:
            return CaspioAuthError(f"Caspio refused the token request ({code})", **kw)
        if status == 404:
            return not_json_error(resp, host)
    if status == 401:
        return CaspioAuthError(
            "Caspio refused a freshly issued token (401): check the web services profile is "
            "enabled and allowed to use the REST API",
            **kw,
        )
    if status == 403 and code == "ApiCallsLimitExceeded":
        return CaspioQuotaExceededError(
            "The Caspio account's API call quota is exhausted (ApiCallsLimitExceeded): "
            "tables loaded so far are kept; run again when the quota resets or raise the plan",
            **kw,
        )
    if status == 403:
        return CaspioPermissionError(
            f"Caspio denied the {what} ({code or 'Forbidden'}: {message}): check the web "
            "services profile's permissions and allowed IP addresses",
            **kw,
        )
    if status == 404:
        return CaspioObjectNotFoundError(
            f"Caspio has no object for the {what} ({code or 'NotFound'}: {message}): check "
            "the table/view/field name",
            **kw,
        )
    if status == 400 and code in ("SqlServerError", "IncorrectQueryParameter"):
        return CaspioQueryRejectedError(
            f"Caspio rejected the query of the {what} ({code}: {message}): check the cursor "
            "field, selected fields and `where` in table_options",
            **kw,
        )
    if status == 414:
        return CaspioQueryRejectedError(
            f"The {what} is longer than Caspio's 2,047-character URI limit: select fewer "
            "fields or shorten the `where`",
            **kw,
        )
    return CaspioApiError(
        f"Caspio answered HTTP {status} to the {what} ({code or 'no code'}: {message})", **kw
    )


def safe_json(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


def error_code(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("Code", "code", "error"):
            value = body.get(key)
            if isinstance(value, str):
                return value
    return None


def error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("Message", "message", "error_description"):
            value = body.get(key)
            if isinstance(value, str):
                return value
    return None


def not_json(resp: requests.Response, body: bytes) -> bool:
    """An answer that never was JSON (a web page, a proxy's text), as opposed to a cut one."""
    ctype = resp.headers.get("Content-Type", "").lower()
    return looks_like_html(resp, body) or bool(ctype and "json" not in ctype)


def looks_like_html(resp: requests.Response, body: bytes) -> bool:
    ctype = resp.headers.get("Content-Type", "").lower()
    head = body[:64].lstrip().lower()
    return "html" in ctype or head.startswith(b"<")


def retry_after(resp: requests.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or HTTP date), capped at 10 minutes."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = http_date(value)
        if when is None:
            return None
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return min(max(0.0, seconds), 600.0)


def http_date(value: str | None) -> dt.datetime | None:
    """An HTTP date (``Date``, ``Retry-After``) as an aware UTC datetime, if it is one."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def is_certificate_error(ex: BaseException) -> bool:
    """True when TLS failed on the certificate (untrusted, expired, wrong host), not the wire."""
    text = str(ex)
    return (
        "CERTIFICATE_VERIFY_FAILED" in text
        or "certificate verify failed" in text
        or "doesn't match" in text
        or "hostname mismatch" in text.lower()
    )


def certificate_reason(ex: BaseException) -> str:
    """The short reason OpenSSL gave, e.g. "self-signed certificate"."""
    match = re.search(r"certificate verify failed: ([^()]+?)\s*\(", str(ex))
    return match.group(1).strip() if match else "certificate not trusted for this host"


def is_name_resolution_error(ex: BaseException) -> bool:
    """True when the host name did not resolve (anywhere in the chain requests wraps it in)."""
    return any(
        type(cur).__name__ == "NameResolutionError"
        or "Name or service not known" in str(cur)
        or "getaddrinfo failed" in str(cur)
        or "nodename nor servname" in str(cur)
        for cur in exception_chain(ex)
    )
