"""The requests session of a client: built once, with the environment read once.

Certificate checks always on, no ``~/.netrc``, proxies and CA bundle from the environment read
when the client is built, one body read per answer.
"""

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
import requests
from requests.adapters import HTTPAdapter

from .errors import CaspioApiError, exception_chain
from .http_errors import (
    certificate_reason,
    http_date,
    is_certificate_error,
    is_name_resolution_error,
    not_json,
    not_json_error,
)


class NoNetrc(requests.auth.AuthBase):
    """Auth that changes nothing: every call already carries its own credentials.

    Why: for a call sent without auth, requests reads ``~/.netrc`` (or ``$NETRC``) and, when the
    file has an entry for the host or a ``default`` one, replaces the Bearer header with Basic
    auth from it, sending someone else's password to Caspio (the token call then fails with
    ``invalid_client``). Looking for the file also costs two ``stat`` calls per request."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def prepare_session(
    session: requests.Session, base_url: str, max_workers: int
) -> tuple[requests.Session, dict[str, str], bool | str]:
    """``session`` set up for one client: certificate checks always on (a session passed in
    cannot switch them off), the environment read once, no ``~/.netrc``, a connection pool
    for ``max_workers`` fetch threads; with the proxies and CA bundle to send every call."""
    session.verify = True
    proxies, verify = environment_settings(session, base_url)
    session.trust_env = False  # read once, just above
    if session.auth is None:
        session.auth = NoNetrc()
    pool = max(10, 2 * max_workers + 4)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "caspio-dlt/0.1 (+dlt)"})
    return session, proxies, verify


def environment_settings(
    session: requests.Session, base_url: str
) -> tuple[dict[str, str], bool | str]:
    """The proxies and the CA bundle that requests would take from the environment for
    ``base_url``, read once when the client is built.

    Why once: requests reads them again on every call (two scans of the whole environment for
    the proxy variables), under the GIL the fetch threads share (measured in
    docs/benchmarks-analysis.md). The client talks to one host, so the answer is the same for all
    of its calls. The result is what requests itself would use: environment
    proxies over the session's own, ``NO_PROXY`` applied to the host, and ``REQUESTS_CA_BUNDLE``
    or ``CURL_CA_BUNDLE`` when set and not empty. A session with ``trust_env = False`` keeps
    ignoring the environment."""
    if not session.trust_env:
        return {}, True
    proxies = requests.utils.get_environ_proxies(base_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return proxies, bundle or True


def read_body(resp: requests.Response) -> bytes:
    """The whole body in one read, inside the request's error handling. ``resp.content`` reads
    10 KB at a time, and each read gives up the GIL and then queues for it behind the threads
    that decode pages. It raises what ``resp.content`` raises (a cut body: ChunkedEncodingError)."""
    return b"".join(resp.iter_content(chunk_size=None))


def describe(params: Mapping[str, str | int] | None, form: dict[str, str] | None) -> str:
    """What a request asked for, for DEBUG logs: query params, or only the grant of a token form."""
    if form is not None:
        return f"grant_type={form.get('grant_type')}"
    return str(dict(params)) if params else ""


class CaspioResponse:
    """A decoded answer: JSON body, status, headers and the server's ``Date``."""

    __slots__ = ("data", "status", "headers")

    def __init__(self, data: Any, status: int, headers: Mapping[str, str]) -> None:
        self.data = data
        self.status = status
        self.headers = headers

    @property
    def server_time(self) -> dt.datetime | None:
        """The ``Date`` header as an aware UTC datetime (the server's clock), if sent."""
        return http_date(self.headers.get("Date"))


class Retryable(Exception):
    """This attempt failed in a way another attempt may not (a timeout, a cut connection,
    a 5xx, a truncated body): the client waits and sends it again."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.retry_after = retry_after


def exchange(
    session: requests.Session, method: str, url: str, host: str, **request: Any
) -> tuple[requests.Response, bytes]:
    """One request and its whole body; transport failures as ``Retryable``, or as a final
    ``CaspioApiError`` where retrying cannot help (an untrusted certificate, an unknown host)."""
    try:
        resp = session.request(method, url, stream=True, **request)
        return resp, read_body(resp)
    except requests.exceptions.Timeout as ex:
        raise Retryable("timeout", f"timed out: {type(ex).__name__}") from None
    except requests.exceptions.SSLError as ex:
        if is_certificate_error(ex):
            # deterministic: retrying cannot help, and checks cannot be turned off
            raise CaspioApiError(
                f"The TLS certificate of {host} failed verification "
                f"({certificate_reason(ex)}): check the Caspio subdomain / "
                "integration URL; behind a TLS-inspecting proxy, point "
                "REQUESTS_CA_BUNDLE at its CA bundle (certificate checks cannot be "
                "switched off)"
            ) from None
        if any(
            marker in str(cause)
            for cause in exception_chain(ex)
            for marker in ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure")
        ):
            # an https:// URL to a server that speaks plain http: it answers the same way again
            raise CaspioApiError(
                f"{host} does not speak TLS (https:// to a plain-http server?): check the "
                "scheme of the integration URL"
            ) from None
        raise Retryable("connection", f"TLS handshake failed: {type(ex).__name__}") from None
    except requests.exceptions.ConnectionError as ex:
        if is_name_resolution_error(ex):
            raise CaspioApiError(
                f"Cannot resolve host {host.split(':')[0]}: check the Caspio "
                "subdomain / integration URL"
            ) from None
        if any(isinstance(cause, ConnectionRefusedError) for cause in exception_chain(ex)):
            # nothing listens there: a wrong port or host, not a passing fault (shaped like the
            # TLS branch above, each with its own cause and fix)
            raise CaspioApiError(
                f"Nothing accepts connections at {host} (connection refused): check the host "
                "and port of the Caspio integration URL"
            ) from None
        raise Retryable("connection", f"connection failed: {type(ex).__name__}") from None
    except requests.exceptions.ChunkedEncodingError as ex:
        raise Retryable("connection", f"broken body: {type(ex).__name__}") from None


def api_path(*segments: object) -> str:
    """``/tables/My%20Table/records`` from its segments, each URL-quoted (a name may hold any
    character the API allows; none may add a path segment of its own)."""
    return "".join("/" + quote(str(segment), safe="") for segment in segments)


def parse_json_body(resp: requests.Response, content: bytes, host: str) -> Any:
    """A 2xx body as JSON (``{}`` when empty); a cut body is ``Retryable``, an answer that
    never was JSON (a web page, a proxy's text) a final error."""
    if not content:
        return {}
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        if not_json(resp, content):
            raise not_json_error(resp, host) from None
        raise Retryable("invalid_json", "2xx answer is not valid JSON (truncated?)") from None
