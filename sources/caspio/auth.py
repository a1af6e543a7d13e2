"""The account's OAuth token: one per (host, client id) per process, cached across runs.

Why so careful: Caspio counts token requests against the API quota and keeps at most 1,000
refresh tokens per account, so a connector that asks for a token per thread or per run burns
both. Here every thread of the process shares one ``TokenProvider`` per account; a lock makes N
threads that need a token cause one token call; a token is renewed ahead of expiry; a request
refused with 401 (or Caspio's stale-token ``400 IncorrectQueryParameter``) renews the token only
if the failed token is still the current one (compare-and-swap: no stampede), and the renewal
uses the refresh token first. The token is also kept in a 0600 file keyed by a hash of host and
client id, so a scheduled run reuses a valid token and makes no token call at all.

Tokens never go to dlt state, logs, exception messages or reprs.
"""

import hashlib
import json
import os
import secrets
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

from .errors import CaspioApiError, CaspioAuthError, CaspioTokenCacheError
from .settings import TOKEN_CACHE_APP_DIR, TOKEN_REFRESH_AHEAD_SECONDS

TokenFetcher = Callable[[dict[str, str], bool], Mapping[str, Any]]
"""``fetch(form, use_basic_auth) -> token JSON``: the client's HTTP call (retries, stats)."""


class Token:
    """An access token with its refresh token and absolute (wall-clock) expiry."""

    __slots__ = ("access_token", "refresh_token", "expires_at", "lifetime")

    def __init__(
        self,
        access_token: str,
        refresh_token: str | None,
        expires_at: float,
        lifetime: float,
    ) -> None:
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.expires_at = expires_at
        self.lifetime = lifetime

    @classmethod
    def from_response(cls, data: Mapping[str, Any], previous: Optional["Token"]) -> "Token":
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise CaspioAuthError(
                "Caspio's token endpoint answered without an access_token: check the "
                "integration URL points at your Caspio account"
            )
        try:
            lifetime = float(data.get("expires_in") or 86399)
        except (TypeError, ValueError):
            lifetime = 86399.0
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
        return cls(access, refresh, time.time() + lifetime, lifetime)

    def refresh_due(self, now: float | None = None) -> bool:
        """True once inside the refresh-ahead window (at most 10% of the token's life)."""
        now = time.time() if now is None else now
        ahead = min(TOKEN_REFRESH_AHEAD_SECONDS, 0.1 * self.lifetime)
        return now >= self.expires_at - ahead

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at:.0f}, access_token=***)"


def default_cache_dir() -> Path:
    """The user's cache dir (XDG / macOS / Windows conventions) + ``caspio-dlt/tokens``."""
    if os.name == "nt":
        root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / TOKEN_CACHE_APP_DIR / "tokens"


class TokenCache:
    """Token files in one directory: created 0700, files 0600, refused when others can read.

    File names are ``sha256(host + client_id)`` so neither the client id nor the host shows in
    the file system; the content holds the tokens, their expiry and a fingerprint of the secret
    they were issued for: a rotated (or mistyped) secret must not ride on an old token, or a
    wrong secret would pass unnoticed until the cached token expired.
    """

    def __init__(self, directory: os.PathLike[str] | str | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir()

    def path_for(self, host: str, client_id: str, suffix: str = ".json") -> Path:
        """The account's file (``.json``: its tokens; ``.pace``: its shared pace)."""
        digest = hashlib.sha256(f"{host.lower()}\n{client_id}".encode()).hexdigest()
        return self.directory / f"{digest}{suffix}"

    def _check_private(self, path: Path) -> None:
        if os.name == "nt":
            return
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CaspioTokenCacheError(
                f"Token cache file {path} is accessible by group/others (mode "
                f"{stat.S_IMODE(st.st_mode):o}); run `chmod 600 {path}` or delete it"
            )
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise CaspioTokenCacheError(
                f"Token cache file {path} belongs to another user; delete it or set "
                "token_cache_dir to a directory of your own"
            )

    def load(self, host: str, client_id: str, fingerprint: str = "") -> Token | None:
        path = self.path_for(host, client_id)
        if not path.exists():
            return None
        self._check_private(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("fingerprint", "") != fingerprint:
                return None  # issued for another secret: never reuse it
            return Token(
                str(data["access_token"]),
                data.get("refresh_token"),
                float(data["expires_at"]),
                float(data["lifetime"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # corrupt / partial file: ignore, it is overwritten on the next save

    def save(self, host: str, client_id: str, token: Token, fingerprint: str = "") -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path_for(host, client_id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        payload = json.dumps(
            {
                "access_token": token.access_token,
                "refresh_token": token.refresh_token,
                "expires_at": token.expires_at,
                "lifetime": token.lifetime,
                "fingerprint": fingerprint,
            }
        ).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, path)  # atomic: a concurrent run reads the old or the new token
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, host: str, client_id: str) -> None:
        self.path_for(host, client_id).unlink(missing_ok=True)


class TokenProvider:
    """The shared token of one account (host + client id) in this process."""

    def __init__(
        self, host: str, client_id: str, client_secret: str, cache: TokenCache | None
    ) -> None:
        self.host = host
        self.cache = cache
        self._client_id = client_id
        self._client_secret = client_secret
        self._fingerprint = hashlib.sha256(f"{client_id}\n{client_secret}".encode()).hexdigest()
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._cache_loaded = False

    def __repr__(self) -> str:
        return f"TokenProvider(host={self.host!r})"

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be logged or shown (for the client's redaction)."""
        tok = self._token
        values = [self._client_secret]
        if tok is not None:
            values.append(tok.access_token)
            if tok.refresh_token:
                values.append(tok.refresh_token)
        return tuple(v for v in values if v)

    def get(self, fetch: TokenFetcher) -> str:
        """A valid access token; fetches one (once, under the lock) when none is valid."""
        tok = self._token
        if tok is not None and not tok.refresh_due():
            return tok.access_token
        with self._lock:
            tok = self._current()
            if tok is not None and not tok.refresh_due():
                return tok.access_token
            return self._obtain(fetch, tok).access_token

    def renew(self, failed_access_token: str, fetch: TokenFetcher) -> str:
        """Called after Caspio refused ``failed_access_token``; renews only if still current."""
        with self._lock:
            tok = self._current()
            if tok is not None and tok.access_token != failed_access_token:
                return tok.access_token  # another thread already renewed it
            return self._obtain(fetch, tok).access_token

    def _current(self) -> Token | None:
        if self._token is None and not self._cache_loaded and self.cache is not None:
            self._cache_loaded = True
            self._token = self.cache.load(self.host, self._client_id, self._fingerprint)
        return self._token

    def _obtain(self, fetch: TokenFetcher, previous: Token | None) -> Token:
        data: Mapping[str, Any] | None = None
        if previous is not None and previous.refresh_token:
            try:
                data = fetch(
                    {"grant_type": "refresh_token", "refresh_token": previous.refresh_token}, True
                )
            except CaspioApiError as ex:
                if ex.code not in ("invalid_grant", "invalid_request", "unsupported_grant_type"):
                    raise
        if data is None:
            data = fetch(
                {
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
                False,
            )
        token = Token.from_response(data, previous)
        self._token = token
        if self.cache is not None:
            self.cache.save(self.host, self._client_id, token, self._fingerprint)
        return token


_REGISTRY: dict[tuple[str, str], TokenProvider] = {}
_REGISTRY_LOCK = threading.Lock()


def get_token_provider(
    host: str, client_id: str, client_secret: str, cache: TokenCache | None
) -> TokenProvider:
    """The process-wide provider for (host, client id); a changed secret starts a new one."""
    key = (host.lower(), client_id)
    with _REGISTRY_LOCK:
        provider = _REGISTRY.get(key)
        if provider is None or provider._client_secret != client_secret:
            provider = TokenProvider(host, client_id, client_secret, cache)
            _REGISTRY[key] = provider
        elif cache is not None and (
            provider.cache is None or provider.cache.directory != cache.directory
        ):
            provider.cache = cache
            provider._cache_loaded = provider._token is not None
        return provider


def reset_token_providers() -> None:
    """Forgets every in-memory token (tests; or after ``os.fork``). The file cache stays."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()
