"""``CaspioClient``: the HTTP session, retries, error mapping and call counting.

Why a client of our own rather than dlt's generic ``RESTClient``: Caspio needs a shared token
with compare-and-swap renewal (see ``auth.py``), a replay on its stale-token ``400`` quirk,
retries on truncated 2xx bodies, a hard give-up time for outages, and an exact count of billed
calls; and the hot path (parse 1,000 rows) uses orjson directly.
"""

import datetime as dt
import email.utils
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from .auth import TokenCache, TokenProvider, get_token_provider
from .budget import CallBudget
from .credentials import CaspioCredentials, normalize_base_url
from .errors import (
    CaspioApiError,
    CaspioAuthError,
    CaspioConfigError,
    CaspioNotJsonError,
    CaspioObjectNotFoundError,
    CaspioPermissionError,
    CaspioQueryRejectedError,
    CaspioQuotaExceededError,
    CaspioUnavailableError,
)
from .settings import (
    API_ROOT,
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_MAX_WORKERS,
    DEFAULT_READ_TIMEOUT,
    RETRY_STATUSES,
    TOKEN_PATH,
)
from .stats import CaspioStats
from .throttle import Throttle

logger = logging.getLogger(__name__)

MAX_AUTH_REPLAYS = 3
"""Replays of one request after 401 / stale-token 400 (each after a renewed token)."""

ObjectKind = str
"""``"tables"`` or ``"views"``: the path segment of the object."""


class _NoNetrc(requests.auth.AuthBase):
    """Auth that changes nothing: every call already carries its own credentials.

    Why: for a call sent without auth, requests reads ``~/.netrc`` (or ``$NETRC``) and, when the
    file has an entry for the host or a ``default`` one, replaces the Bearer header with Basic
    auth from it, sending someone else's password to Caspio (the token call then fails with
    ``invalid_client``). Looking for the file also cost two ``stat`` calls per request (2.5% of
    a bulk sync's profile samples, though no wall time that 3 runs each could tell apart)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


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
        value = self.headers.get("Date")
        if not value:
            return None
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.astimezone(dt.timezone.utc)


class _Retry(Exception):
    """Internal: this attempt failed in a retryable way."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.retry_after = retry_after


class CaspioClient:
    """Thread-safe client of one Caspio account's REST v3 API.

    Pass ``credentials`` (``CaspioCredentials``) or ``base_url`` + ``client_id`` +
    ``client_secret``. ``max_workers`` sizes the connection pool and the page-fetch pool.
    ``max_retry_seconds`` bounds how long one request keeps retrying (sustained outage ->
    ``CaspioUnavailableError`` within that time). ``token_cache=False`` keeps tokens in memory
    only; ``token_cache_dir`` moves the 0600 token files. ``requests_per_second`` paces all
    threads (e.g. 6.6 for a 2,000 per 300 s throttle) so a throttled account sees few 429s.
    """

    def __init__(
        self,
        credentials: CaspioCredentials | None = None,
        *,
        base_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        token_cache: bool = True,
        token_cache_dir: str | None = None,
        requests_per_second: float | None = None,
        budget: CallBudget | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if credentials is None:
            if not base_url or not client_id or not client_secret:
                raise CaspioConfigError(
                    "CaspioClient needs credentials=CaspioCredentials(...) or base_url, "
                    "client_id and client_secret"
                )
            credentials = CaspioCredentials(
                client_id=client_id, client_secret=client_secret, integration_url=base_url
            )
        credentials.validate()
        self.credentials = credentials
        """The account this client talks to (secrets never shown by its repr)."""
        base_url = credentials.base_url
        client_id, client_secret = credentials.client_id, credentials.client_secret
        if max_workers < 1:
            raise CaspioConfigError(f"max_workers must be >= 1, got {max_workers}")
        self.base_url = normalize_base_url(base_url)
        self.api_url = self.base_url + API_ROOT
        self.host = urlsplit(self.base_url).netloc
        self.max_workers = max_workers
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.max_retry_seconds = max_retry_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stats = CaspioStats()
        self.budget = budget
        """Optional hard cap on calls: charged before every attempt (token calls included)."""
        cache = TokenCache(token_cache_dir) if token_cache else None
        self._tokens: TokenProvider = get_token_provider(self.host, client_id, client_secret, cache)
        self._session = session or requests.Session()
        # certificate checks are always on: a session passed in cannot switch them off
        self._session.verify = True
        self._proxies, self._verify = _environment_settings(self._session, self.base_url)
        self._session.trust_env = False  # read once, just above
        if self._session.auth is None:
            self._session.auth = _NoNetrc()
        pool = max(10, 2 * max_workers + 4)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update(
            {"Accept": "application/json", "User-Agent": "caspio-dlt/0.1 (+dlt)"}
        )
        self.throttle = Throttle(requests_per_second)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CaspioClient(base_url={self.base_url!r}, {self.stats!r})"

    # ---- resources -------------------------------------------------------------------------

    @property
    def executor(self) -> ThreadPoolExecutor:
        """A pool of ``max_workers`` threads for concurrent page fetches (created lazily)."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_workers, thread_name_prefix="caspio-pages"
                )
            return self._executor

    def close(self) -> None:
        with self._executor_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
        self._session.close()

    def __enter__(self) -> "CaspioClient":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- API -------------------------------------------------------------------------------

    def list_tables(self) -> list[str]:
        return list(self.get("/tables", kind="listing").get("Result") or [])

    def list_views(self) -> list[str]:
        return list(self.get("/views", kind="listing").get("Result") or [])

    def get_fields(self, kind: ObjectKind, name: str) -> list[dict[str, Any]]:
        """Field objects of a table or view (``PK_ID`` is never among them)."""
        data = self.get(f"/{kind}/{quote(name, safe='')}/fields", kind="fields", obj=name)
        return list(data.get("Result") or [])

    def get_records(
        self,
        kind: ObjectKind,
        name: str,
        params: Mapping[str, str | int],
        decode: Callable[[bytes], Any] | None = None,
    ) -> CaspioResponse:
        """One page of records (``Result`` list, plus ``Pagination`` when asked).

        ``decode`` (a fast typed decoder, run in the fetching thread) may turn the body into
        something else; when it answers ``None`` the body is parsed as JSON as usual."""
        path = f"/{kind}/{quote(name, safe='')}/records"
        return self._send(
            "GET", self.api_url + path, params=params, kind="records", obj=name, decode=decode
        )

    def get(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        kind: str = "other",
        obj: str | None = None,
    ) -> Any:
        """GET ``api_url + path`` (auth, retries, error mapping) and return the decoded JSON."""
        return self.fetch(path, params, kind=kind, obj=obj).data

    def fetch(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        kind: str = "other",
        obj: str | None = None,
    ) -> CaspioResponse:
        """GET returning the whole ``CaspioResponse`` (headers such as ``Date`` included)."""
        return self.request("GET", path, params=params, kind=kind, obj=obj)

    def get_bytes(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        kind: str = "other",
        obj: str | None = None,
    ) -> bytes:
        """GET a binary body (file / attachment content) with the same auth and retries."""
        resp = self._send("GET", self.api_url + path, params=params, kind=kind, obj=obj, raw=True)
        return bytes(resp.data)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        kind: str = "other",
        obj: str | None = None,
    ) -> CaspioResponse:
        """Any authenticated API call (tests use it for POST/PUT/DELETE)."""
        return self._send(
            method, self.api_url + path, params=params, json_body=json, kind=kind, obj=obj
        )

    # ---- token endpoint --------------------------------------------------------------------

    def _fetch_token(self, form: dict[str, str], basic: bool) -> Mapping[str, Any]:
        auth: tuple[str, str] | None = None
        if basic:
            auth = (self._tokens._client_id, self._tokens._client_secret)
        # always inside a data call's attempt loop: _send would end that call's probe role
        resp = self._attempts(
            "POST",
            self.base_url + TOKEN_PATH,
            form=form,
            auth=auth,
            kind="token",
            obj=None,
            authenticated=False,
        )
        if not isinstance(resp.data, dict):
            raise CaspioNotJsonError(
                f"{self.host} answered the token request without a JSON object: check the "
                "subdomain / integration URL"
            )
        return resp.data

    # ---- the retry loop --------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> CaspioResponse:
        try:
            return self._attempts(method, url, **kwargs)
        finally:
            self.throttle.released()

    def _attempts(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        kind: str,
        obj: str | None,
        authenticated: bool = True,
        raw: bool = False,
        decode: Callable[[bytes], Any] | None = None,
    ) -> CaspioResponse:
        started = time.monotonic()
        deadline = started + self.max_retry_seconds
        attempt = 0
        replays = 0
        renewed_by_us = False
        path = urlsplit(url).path
        while True:
            sent_at = self.throttle.before_call()
            headers: dict[str, str] = {}
            token = ""
            if authenticated:
                token = self._tokens.get(self._fetch_token)
                headers["Authorization"] = f"Bearer {token}"
            if method != "GET" and form is None:
                # Caspio answers 415 to any write without a JSON content type, body or not
                headers["Content-Type"] = "application/json"
            if self.budget is not None:
                self.budget.charge(kind, obj)
            t0 = time.monotonic()
            try:
                try:
                    resp = self._session.request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        data=form,
                        auth=auth,
                        headers=headers,
                        timeout=self.timeout,
                        proxies=self._proxies,
                        verify=self._verify,
                        stream=True,
                    )
                    body = _read_body(resp)
                except requests.exceptions.Timeout as ex:
                    raise _Retry("timeout", f"timed out: {type(ex).__name__}") from None
                except requests.exceptions.SSLError as ex:
                    if _is_certificate_error(ex):
                        # deterministic: retrying cannot help, and checks cannot be turned off
                        raise CaspioApiError(
                            f"The TLS certificate of {self.host} failed verification "
                            f"({_certificate_reason(ex)}): check the Caspio subdomain / "
                            "integration URL; behind a TLS-inspecting proxy, point "
                            "REQUESTS_CA_BUNDLE at its CA bundle (certificate checks cannot be "
                            "switched off)"
                        ) from None
                    raise _Retry(
                        "connection", f"TLS handshake failed: {type(ex).__name__}"
                    ) from None
                except requests.exceptions.ConnectionError as ex:
                    if _is_name_resolution_error(ex):
                        raise CaspioApiError(
                            f"Cannot resolve host {self.host.split(':')[0]}: check the Caspio "
                            "subdomain / integration URL"
                        ) from None
                    raise _Retry("connection", f"connection failed: {type(ex).__name__}") from None
                except requests.exceptions.ChunkedEncodingError as ex:
                    raise _Retry("connection", f"broken body: {type(ex).__name__}") from None
                finally:
                    self.stats.count_call(kind, obj)
                elapsed = (time.monotonic() - t0) * 1000
                logger.debug(
                    "%s %s %s -> %s in %.0f ms",
                    method,
                    path,
                    _describe(params, form),
                    resp.status_code,
                    elapsed,
                )
                status = resp.status_code
                if 200 <= status < 300:
                    self.throttle.succeeded(sent_at)
                    data = body if raw else self._decode_ok(resp, body, decode)
                    return CaspioResponse(data, status, resp.headers)
                error_body = _safe_json(body)
                code = _error_code(error_body)
                if (
                    authenticated
                    and (replays == 0 or not renewed_by_us)
                    and replays < MAX_AUTH_REPLAYS
                    and (status == 401 or (status == 400 and code == "IncorrectQueryParameter"))
                ):
                    # expired/stale token: renew (only if nobody else did) and replay. Once our
                    # own token call did not help, the 400 is a real query error; but a token
                    # another thread renewed may itself be stale by now: renew again (bounded).
                    replays += 1
                    self.stats.count_replay()
                    logger.debug(
                        "%s %s: %s, renewing the token and replaying", method, path, status
                    )
                    calls_before = self.stats.token_calls
                    self._tokens.renew(token, self._fetch_token)
                    renewed_by_us = self.stats.token_calls > calls_before
                    continue
                if status in RETRY_STATUSES and code != "ApiCallsLimitExceeded":
                    raise _Retry(str(status), f"HTTP {status}", _retry_after(resp))
                raise self._error_for(resp, body, error_body, code, kind, obj)
            except _Retry as retry:
                attempt += 1
                self._backoff(retry, attempt, deadline, method, path, started)

    def _decode_ok(
        self, resp: requests.Response, content: bytes, decode: Callable[[bytes], Any] | None
    ) -> Any:
        if not content:
            return {}
        if decode is not None:
            decoded = decode(content)
            if decoded is not None:
                return decoded
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            ctype = resp.headers.get("Content-Type", "").lower()
            if _looks_like_html(resp, content) or (ctype and "json" not in ctype):
                # an answer that never was JSON (a web page, a proxy's text): not a truncation
                raise self._not_json(resp) from None
            # a 2xx with a broken body: a truncated answer (connection cut mid-body)
            raise _Retry("invalid_json", "2xx answer is not valid JSON (truncated?)") from None

    def _backoff(
        self,
        retry: _Retry,
        attempt: int,
        deadline: float,
        method: str,
        path: str,
        started: float,
    ) -> None:
        """Exponential backoff with full jitter; honours Retry-After; bounded by the deadline."""
        delay = random.uniform(0, min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1))))
        if retry.retry_after is not None:
            delay = max(delay, retry.retry_after)
        now = time.monotonic()
        # a throttle is waited out until the deadline: Caspio's window can be 300 s long, and a
        # sync that filled it must not fail after max_retries short probes
        out_of_attempts = attempt > self.max_retries and retry.reason != "429"
        if out_of_attempts or now + delay > deadline:
            hint = ""
            if retry.reason in ("connection", "timeout"):
                hint = (
                    f"check the Caspio subdomain / integration URL ({self.base_url}) is right "
                    "and reachable, "
                )
            raise CaspioUnavailableError(
                f"Caspio at {self.host} kept failing ({retry}) on {method} {path}: gave up after "
                f"{attempt} attempts in {now - started:.0f} s; {hint}retry later, or raise "
                "max_retries / max_retry_seconds"
            )
        self.stats.count_retry(retry.reason, delay)
        logger.debug("%s %s: %s, retry %d in %.2f s", method, path, retry, attempt, delay)
        if retry.reason == "429":
            # every thread of this client waits, not only the one that was told
            self.throttle.throttled(delay)
        time.sleep(delay)

    # ---- errors ----------------------------------------------------------------------------

    def _not_json(self, resp: requests.Response) -> CaspioNotJsonError:
        ctype = resp.headers.get("Content-Type", "no content type").split(";")[0]
        return CaspioNotJsonError(
            f"{self.host} answered HTTP {resp.status_code} with {ctype} instead of Caspio JSON: "
            "check the subdomain / integration URL (it should be the host shown as Token "
            "Endpoint URL on the web services profile)",
            status=resp.status_code,
        )

    def _error_for(
        self,
        resp: requests.Response,
        raw_body: bytes,
        body: Any,
        code: str | None,
        kind: str,
        obj: str | None,
    ) -> CaspioApiError:
        status = resp.status_code
        request_id = resp.headers.get("X-Caspio-Request-ID")
        if isinstance(body, dict) and isinstance(body.get("RequestId"), str):
            request_id = request_id or body["RequestId"]
        if body is None:
            if raw_body.strip() and (_looks_like_html(resp, raw_body) or status in (404, 200)):
                return self._not_json(resp)
            if not raw_body.strip() and status == 404:
                return self._not_json(resp)
        message = self._redact(_error_message(body) or resp.reason or "")
        what = f"{kind} call for {obj!r}" if obj else f"{kind} call"
        kw: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
        if kind == "token":
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
                return self._not_json(resp)
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

    def _redact(self, text: str) -> str:
        for secret in self._tokens.secrets():
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text


def _environment_settings(
    session: requests.Session, base_url: str
) -> tuple[dict[str, str], bool | str]:
    """The proxies and the CA bundle that requests would take from the environment for
    ``base_url``, read once when the client is built.

    Why once: requests reads them again on every call (two scans of the whole environment for
    the proxy variables), under the GIL the fetch threads share. ``get_records`` of a 1,000-row
    page, body not decoded, took 0.68 against 0.81 ms of CPU (medians of 5 alternating runs of
    200 pages, with 35 environment variables set). The client talks to one host, so the answer
    is the same for all of its calls. The result is what requests itself would use: environment
    proxies over the session's own, ``NO_PROXY`` applied to the host, and ``REQUESTS_CA_BUNDLE``
    or ``CURL_CA_BUNDLE`` when set and not empty. A session with ``trust_env = False`` keeps
    ignoring the environment."""
    if not session.trust_env:
        return {}, True
    proxies = requests.utils.get_environ_proxies(base_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return proxies, bundle or True


def _safe_json(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


def _error_code(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("Code", "code", "error"):
            value = body.get(key)
            if isinstance(value, str):
                return value
    return None


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("Message", "message", "error_description"):
            value = body.get(key)
            if isinstance(value, str):
                return value
    return None


def _read_body(resp: requests.Response) -> bytes:
    """The whole body in one read, inside the request's error handling. ``resp.content`` reads
    10 KB at a time: about 45 reads for a 450 KB page, and each gives up the GIL and then
    queues for it behind the threads that decode pages (socket reads were a tenth of a bulk
    sync's profile). It raises what ``resp.content`` raises (a cut body: ChunkedEncodingError)."""
    return b"".join(resp.iter_content(chunk_size=None))


def _looks_like_html(resp: requests.Response, body: bytes) -> bool:
    ctype = resp.headers.get("Content-Type", "").lower()
    head = body[:64].lstrip().lower()
    return "html" in ctype or head.startswith(b"<")


def _retry_after(resp: requests.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or HTTP date), capped at 10 minutes."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return min(max(0.0, seconds), 600.0)


def _is_certificate_error(ex: BaseException) -> bool:
    """True when TLS failed on the certificate (untrusted, expired, wrong host), not the wire."""
    text = str(ex)
    return (
        "CERTIFICATE_VERIFY_FAILED" in text
        or "certificate verify failed" in text
        or "doesn't match" in text
        or "hostname mismatch" in text.lower()
    )


def _certificate_reason(ex: BaseException) -> str:
    """The short reason OpenSSL gave, e.g. "self-signed certificate"."""
    match = re.search(r"certificate verify failed: ([^()]+?)\s*\(", str(ex))
    return match.group(1).strip() if match else "certificate not trusted for this host"


def _is_name_resolution_error(ex: BaseException) -> bool:
    seen = 0
    cur: BaseException | None = ex
    while cur is not None and seen < 10:
        name = type(cur).__name__
        text = str(cur)
        if (
            name == "NameResolutionError"
            or "Name or service not known" in text
            or ("getaddrinfo failed" in text or "nodename nor servname" in text)
        ):
            return True
        nxt = cur.__cause__ or cur.__context__
        if nxt is None and cur.args and isinstance(cur.args[0], BaseException):
            nxt = cur.args[0]
        elif nxt is None and hasattr(cur, "reason") and isinstance(cur.reason, BaseException):
            nxt = cur.reason
        cur = nxt
        seen += 1
    return False


def _describe(params: Mapping[str, str | int] | None, form: dict[str, str] | None) -> str:
    """What a request asked for, for DEBUG logs: query params, or only the grant of a token form."""
    if form is not None:
        return f"grant_type={form.get('grant_type')}"
    return str(dict(params)) if params else ""
