"""``CaspioClient``: the HTTP session, retries, error mapping and call counting.

Why a client of our own rather than dlt's generic ``RESTClient``: Caspio needs a shared token
with compare-and-swap renewal (see ``auth.py``), a replay on its stale-token ``400`` quirk,
retries on truncated 2xx bodies, a hard give-up time for outages, and an exact count of billed
calls; and the hot path (parse 1,000 rows) uses orjson directly.
"""

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests

from .auth import TokenCache, TokenProvider, get_token_provider
from .budget import CallBudget
from .credentials import CaspioCredentials, normalize_base_url
from .errors import CaspioConfigError, CaspioNotJsonError
from .http_errors import (
    api_error,
    error_code,
    not_json,
    not_json_error,
    retry_after,
    safe_json,
)
from .in_flight import InFlight, outcome_of
from .retries import Backoff
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
    ObjectKind,
)
from .shared_pace import SharedPace
from .stats import CallKind, CaspioStats
from .throttle import Throttle
from .transport import (
    CaspioResponse,
    Retryable,
    api_path,
    describe,
    exchange,
    parse_json_body,
    prepare_session,
)

logger = logging.getLogger(__name__)

MAX_AUTH_REPLAYS = 3
"""Replays of one request after 401 / stale-token 400 (each after a renewed token)."""


class CaspioClient:
    """Thread-safe client of one Caspio account's REST v3 API.

    Pass ``credentials`` (``CaspioCredentials``) or ``base_url`` + ``client_id`` +
    ``client_secret``. ``max_workers`` caps the calls in flight across all tables (the
    adaptive budget of ``in_flight.py``) and sizes the connection pool and the page-fetch pool.
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
        self.max_retry_seconds = max_retry_seconds
        self.stats = CaspioStats()
        self.budget = budget
        """Optional hard cap on calls: charged before every attempt (token calls included)."""
        cache = TokenCache(token_cache_dir) if token_cache else None
        self._tokens: TokenProvider = get_token_provider(self.host, client_id, client_secret, cache)
        self._session, self._proxies, self._verify = prepare_session(
            session or requests.Session(), self.base_url, max_workers
        )
        shared = SharedPace(cache.path_for(self.host, client_id, ".pace")) if cache else None
        self.throttle = Throttle(requests_per_second, shared)
        self.in_flight = InFlight(max_workers)
        """The one budget of calls in flight that every call of this client takes a slot of."""
        self.backoff = Backoff(
            base=backoff_base,
            cap=backoff_max,
            max_retries=max_retries,
            host=self.host,
            base_url=self.base_url,
            stats=self.stats,
            throttle=self.throttle,
        )
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
        return list(self.get("/tables", call="listing").get("Result") or [])

    def list_views(self) -> list[str]:
        return list(self.get("/views", call="listing").get("Result") or [])

    def get_fields(self, kind: ObjectKind, name: str) -> list[dict[str, Any]]:
        """Field objects of a table or view (``PK_ID`` is never among them)."""
        data = self.get(api_path(kind, name, "fields"), call="fields", obj=name)
        return list(data.get("Result") or [])

    def get_records(
        self,
        kind: ObjectKind,
        name: str,
        params: Mapping[str, str | int],
        call: CallKind = "records",
    ) -> CaspioResponse:
        """One page of records as JSON (``Result`` list, plus ``Pagination`` when asked);
        ``call`` is the kind of call it counts as (a key scan's are ``keys``)."""
        path = api_path(kind, name, "records")
        return self._send("GET", self.api_url + path, params=params, call=call, obj=name)

    def get_records_body(
        self, kind: ObjectKind, name: str, params: Mapping[str, str | int]
    ) -> CaspioResponse:
        """One page of records with its body as bytes, for a reader that decodes it itself
        (``reader.py``); an answer that is not JSON at all is still an error here."""
        path = api_path(kind, name, "records")
        return self._send(
            "GET", self.api_url + path, params=params, call="records", obj=name, raw="json"
        )

    def pause_before_retry(self, reason: str, attempt: int, started: float, what: str) -> None:
        """Wait as the client waits before its own retries (jittered, bounded by
        ``max_retry_seconds`` from ``started``), for a caller that found an answer unusable
        (a truncated body); raises ``CaspioUnavailableError`` when the time is up."""
        deadline = started + self.max_retry_seconds
        self.backoff.pause(Retryable(reason, f"{reason} answer"), attempt, deadline, what, started)

    def get(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        call: CallKind = "other",
        obj: str | None = None,
    ) -> Any:
        """GET ``api_url + path`` (auth, retries, error mapping) and return the decoded JSON."""
        return self.fetch(path, params, call=call, obj=obj).data

    def fetch(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        call: CallKind = "other",
        obj: str | None = None,
    ) -> CaspioResponse:
        """GET returning the whole ``CaspioResponse`` (headers such as ``Date`` included)."""
        return self.request("GET", path, params=params, call=call, obj=obj)

    def get_bytes(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        call: CallKind = "other",
        obj: str | None = None,
    ) -> bytes:
        """GET a binary body (file / attachment content) with the same auth and retries."""
        resp = self._send("GET", self.api_url + path, params=params, call=call, obj=obj, raw=True)
        return bytes(resp.data)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        call: CallKind = "other",
        obj: str | None = None,
    ) -> CaspioResponse:
        """Any authenticated API call (tests use it for POST/PUT/DELETE)."""
        return self._send(
            method, self.api_url + path, params=params, json_body=json, call=call, obj=obj
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
            call="token",
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
        call: CallKind,
        obj: str | None,
        authenticated: bool = True,
        raw: bool | str = False,
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
                self.budget.charge(call, obj)
            slot = self.in_flight.acquire()
            t0, status = time.monotonic(), 0
            try:
                try:
                    resp, body = exchange(
                        self._session,
                        method,
                        url,
                        self.host,
                        params=params,
                        json=json_body,
                        data=form,
                        auth=auth,
                        headers=headers,
                        timeout=self.timeout,
                        proxies=self._proxies,
                        verify=self._verify,
                    )
                    status = resp.status_code
                finally:
                    self.in_flight.release(slot, outcome_of(status))
                    self.stats.count_call(call, obj)
                elapsed = (time.monotonic() - t0) * 1000
                logger.debug(
                    "%s %s %s -> %s in %.0f ms",
                    method,
                    path,
                    describe(params, form),
                    resp.status_code,
                    elapsed,
                )
                if 200 <= status < 300:
                    self.throttle.succeeded(sent_at)
                    if raw == "json" and body and not_json(resp, body):
                        raise not_json_error(resp, self.host)
                    data = body if raw else parse_json_body(resp, body, self.host)
                    return CaspioResponse(data, status, resp.headers)
                error_body = safe_json(body)
                code = error_code(error_body)
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
                    raise Retryable(str(status), f"HTTP {status}", retry_after(resp))
                raise api_error(resp, body, error_body, code, call, obj, self.host, self._redact)
            except Retryable as retry:
                attempt += 1
                self.backoff.pause(retry, attempt, deadline, f"{method} {path}", started)

    def _redact(self, text: str) -> str:
        for secret in self._tokens.secrets():
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text
