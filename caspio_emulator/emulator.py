"""The in-process emulator: build an account from a dataset, serve it on loopback, expose knobs.

This is the contract in docs/architecture.md. The account is built in the constructor (so a bad
dataset fails before any socket opens); ``start()``/``with`` binds and serves on a daemon
thread; ``stop()`` shuts the listener and every open keep-alive connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import design
from .app import App, Server
from .dataset import Dataset, build_store, generate, load_dataset
from .faults import Knobs, RequestLogEntry, Settings, parse_rate_limit
from .store import Store, real_clock
from .webhooks import WebhookDelivery

DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
DEFAULT_HOST_NAME = "c0emulat.caspio.com"

_CACHE: dict[tuple[str, float], Dataset] = {}


def _dataset(source: str | Path | dict[str, Any] | Dataset | None) -> Dataset:
    """Parse once per (path, mtime): fixtures build a fresh account per test from the cache."""
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source).resolve()
        key = (str(path), path.stat().st_mtime if path.exists() else 0.0)
        if key not in _CACHE:
            _CACHE[key] = load_dataset(path)
        return _CACHE[key]
    return load_dataset(source)


def _clock(value: datetime | Callable[[], datetime] | None) -> Callable[[], datetime]:
    if value is None:
        return real_clock
    if isinstance(value, datetime):
        frozen = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return lambda: frozen
    return value


class Emulator:
    """A local Caspio account over HTTP. Use as a context manager."""

    def __init__(
        self,
        dataset: str | Path | dict[str, Any] | Dataset | None = None,
        generate: dict[str, int] | None = None,
        latency_ms: float = 0,
        rate_limit: tuple[int, float] | str | None = None,
        fault_rate: float = 0.0,
        token_ttl: float = 86399,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        quota: int | None = None,
        stale_token_400: bool = False,
        retry_after: int | None = None,
        hang_seconds: float = 10.0,
        faults: list[str] | None = None,
        seed: int = 0,
        clock: datetime | Callable[[], datetime] | None = None,
        webhook_retry_seconds: Sequence[float] | None = None,
        webhook_timeout: float = 10.0,
    ) -> None:
        ds = _dataset(dataset)
        self.dataset = ds
        self.host = host
        self.port = port
        self.store = Store(clock=_clock(clock), seed=seed)
        build_store(ds, self.store)
        for table, n in (generate or {}).items():
            generate_rows(self.store, table, int(n), seed)
        settings = Settings(
            latency_ms=float(latency_ms),
            rate_limit=parse_rate_limit(rate_limit),
            fault_rate=float(fault_rate),
            token_ttl=float(token_ttl),
            quota=quota,
            stale_token_400=stale_token_400,
            retry_after=retry_after,
            seed=seed,
        )
        self.knobs = Knobs(settings)
        self.knobs.configure(hang_seconds=hang_seconds, webhook_timeout=webhook_timeout)
        if webhook_retry_seconds is not None:
            self.knobs.configure(webhook_retry_seconds=webhook_retry_seconds)
        if faults is not None:
            self.knobs.configure(faults=faults)
        self.client_id = client_id or ds.account.get("client_id") or DEFAULT_CLIENT_ID
        self.client_secret = (
            client_secret or ds.account.get("client_secret") or DEFAULT_CLIENT_SECRET
        )
        self.account_host = ds.account.get("host") or DEFAULT_HOST_NAME
        self.app = App(
            self.store, self.knobs, self.client_id, self.client_secret, self.account_host
        )
        for folder in ds.folders:
            self.app.files.add_folder(folder, "2024-01-15T09:30:00")
        for f in ds.files:
            self.app.files.add_file(f.path, f.content, f.content_type, f.created, f.modified)
        self.app.bridge_apps = ds.bridge_applications
        self.app.directories = ds.directories
        self.app.tasks = ds.tasks
        self.app.hooks.load(ds.webhooks)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------- lifecycle

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self.app.stop_event.clear()
        self.app.hooks.open()
        self._server = Server((self.host, self.port), self.app)
        self.port = self._server.server_address[1]
        self.app.base_url = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"caspio-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.app.stop_event.set()
        self.app.hooks.close()
        server.shutdown()
        server.close_all()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------- contract

    @property
    def base_url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def v3_url(self) -> str:
        return self.base_url + "/integrations/rest/v3"

    @property
    def v2_url(self) -> str:
        return self.base_url + "/rest/v2"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/token"

    @property
    def calls(self) -> int:
        """API calls answered (token and failed calls included, admin calls excluded)."""
        return self.knobs.calls

    @property
    def log(self) -> list[RequestLogEntry]:
        with self.knobs.lock:
            return list(self.knobs.log)

    def reset_log(self) -> None:
        """Clear the request log and the call counter."""
        self.knobs.reset_log()

    def configure(self, **settings: Any) -> None:
        """Change knobs at run time: latency_ms, rate_limit, fault_rate, faults (the pool random
        faults draw from), token_ttl, quota, stale_token_400, retry_after, hang_seconds, seed,
        clock, webhook_retry_seconds (delays before each redelivery of a failed webhook call),
        webhook_timeout (seconds one delivery call may take)."""
        if "clock" in settings:
            self.set_clock(settings.pop("clock"))
        self.knobs.configure(**settings)

    def script_faults(self, faults: list[str]) -> None:
        """The next len(faults) API calls get these faults, in order."""
        self.knobs.script_faults(list(faults))

    def expire_tokens(self, sparing_seconds: float = 0.0) -> None:
        """Every access token issued so far becomes expired now (refresh tokens stay valid),
        except those issued within the last ``sparing_seconds``: a fault test that revokes on a
        timer spares the token a client has just renewed, which no real account revokes before
        the client can use it once."""
        self.app.expire_tokens(sparing_seconds)

    def set_clock(self, clock: datetime | Callable[[], datetime] | None) -> None:
        """TIMESTAMP stamps and GETDATE() read this clock: a datetime (frozen; naive = UTC),
        a callable returning one, or None for real time."""
        self.store.clock = _clock(clock)

    def table_rows(self, name: str) -> list[dict[str, Any]]:
        """Every row of a table or view in wire format, by PK_ID (no API call counted)."""
        obj = self.store.table(name) or self.store.view(name)
        if obj is None:
            raise KeyError(f"no table or view {name!r}")
        return self.store.all_rows(obj.scope)

    # -------------------------------------------------------- additions (not API calls)

    def access_token(self) -> str:
        """A valid bearer token issued without an API call (for tests that skip OAuth)."""
        return str(self.app.issue()["access_token"])

    def insert(self, table: str, values: dict[str, Any]) -> int:
        """Insert a row as a client would (generated values and stamps apply); not counted."""
        return self.store.insert(table, values)

    def update(self, table: str, where: str, values: dict[str, Any]) -> int:
        """Update rows matching a T-SQL where (OnUpdate stamps apply); not counted."""
        return len(self.store.update(table, where, values))

    def delete(self, table: str, where: str) -> int:
        """Delete rows matching a T-SQL where; not counted."""
        return self.store.delete(table, where)

    def delete_all(self, table: str) -> int:
        """Empty a table as the datasheet's "Delete All" does: no webhook event fires (Caspio
        documents none for a delete-all); returns the rows deleted. Not counted."""
        return self.store.delete_all(table)

    # -------------------------------------------------------- outgoing webhooks (additions)

    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook delivery attempt so far, oldest first: URL, attempt number, the
        receiver's status (None: no answer) or error, and the exact JSON body sent. Messages
        to a URL the emulator may not call (a dataset's non-loopback URL) appear once, with
        ``status=None`` and an error starting ``not sent``. Deliveries are not API calls."""
        return self.app.hooks.deliveries()

    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook delivery is done or given up (redeliveries follow
        ``webhook_retry_seconds``); False if `timeout` seconds pass first."""
        return self.app.hooks.flush(timeout)

    def add_field(self, table: str, field: dict[str, Any]) -> dict[str, Any]:
        """Add a field as ``POST /tables/{t}/fields`` would (same rules); returns its /fields
        object. Not counted; a refused definition raises QueryError (status, code, message)."""
        return design.add_field(self.store, table, field).to_wire()

    def update_field(self, table: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a field as ``PUT /tables/{t}/fields/{f}`` would; returns its new /fields
        object. Not counted; raises QueryError when refused (nothing changed then)."""
        return design.update_field(self.store, table, name, changes).to_wire()

    def delete_field(self, table: str, name: str) -> None:
        """Delete a field and its data as ``DELETE /tables/{t}/fields/{f}`` would; not counted."""
        design.delete_field(self.store, table, name)

    def generate(self, table: str, n: int, seed: int = 0) -> None:
        """Append n synthetic rows to a table (created wide if absent)."""
        generate_rows(self.store, table, n, seed)


def generate_rows(store: Store, table: str, n: int, seed: int) -> None:
    generate(store, table, n, seed)
