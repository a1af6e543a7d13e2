"""Outgoing webhooks (REST v3 ``/outgoingWebhooks``): definitions, events, and delivery.

What: the ten ``/outgoingWebhooks`` operations of Caspio's OpenAPI document (webhooks and
their events: list, create, get, update, delete), with request bodies checked against the
document's request schemas (``WebhookPostRequest``, ``WebhookPutRequest``,
``WebhookEventRequest``: ``additionalProperties: false``, typed, nullable) and answers cut to
its response schemas; and the delivery side: every record change of a subscribed table
(``table.recordInsert``, ``table.recordUpdate`` when a value really changed,
``table.recordDelete``) becomes one message per record, POSTed as JSON to every URL of the
webhook by a background thread, with redeliveries on failure (README section 7).

Why the store tells us (``Store.sink``): a change comes from the REST routes or from the
emulator's Python API (``emu.insert/update/delete``), and only the store sees the row before
and after, atomically. Each change carries its event source (``RESTAPIs`` for the REST
routes, ``Datasheet`` for the Python API: guess 50) and fires only events that list it.

Why loopback only: the emulator must never send traffic off the machine. A URL that is not
``http://`` to ``localhost``, ``127.0.0.0/8`` or ``[::1]`` is refused when a webhook is
created or updated (``400 IncorrectBodyParameter`` naming the rule); a dataset's webhook with
another URL is kept (it is metadata) but its messages are recorded as not sent. At delivery
the host is resolved again and every address must be loopback, and redirects are never
followed (``http.client``, not urllib).

Deliveries are not API calls (Caspio calls out): they are neither counted nor logged nor
metered; the management calls are ordinary API calls (the HTTP layer counts them).
"""

from __future__ import annotations

import heapq
import http.client
import ipaddress
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from .sql import QueryError
from .store import Store, Table

EVENT_TYPES = ("table.recordInsert", "table.recordUpdate", "table.recordDelete")
_KIND_EVENT = {
    "insert": "table.recordInsert",
    "update": "table.recordUpdate",
    "delete": "table.recordDelete",
}
REST_SOURCE = "RESTAPIs"
"""The REST API's event source: named in the OpenAPI operation descriptions (the README and
Caspio's n8n node leave it out)."""
PYTHON_SOURCE = "Datasheet"
"""What the emulator's Python API (``emu.insert/update/delete``) counts as: a person editing
the datasheet (guess 50)."""
EVENT_SOURCES = (
    "Datasheet",
    "DataPages",
    "DataParts",
    "Extensions",
    REST_SOURCE,
    "Tasks",
    "TriggeredActions",
)
"""The OpenAPI's five values plus the two more the README and the n8n node list."""
MAX_CALL_THROTTLING = 100
"""The plan's CallThrottling ceiling, used when none is given (a guess: guess 52)."""

_NULLABLE_STRING = "string"
_STRINGS = "array of strings"
_INT32 = "int32"
_BOOLEAN = "boolean"
REQUEST_SCHEMAS: dict[str, dict[str, str]] = {
    "WebhookPostRequest": {
        "Name": _NULLABLE_STRING,
        "Description": _NULLABLE_STRING,
        "OutgoingUrls": _STRINGS,
        "CallThrottling": _INT32,
    },
    "WebhookPutRequest": {
        "Name": _NULLABLE_STRING,
        "Description": _NULLABLE_STRING,
        "OutgoingUrls": _STRINGS,
        "CallThrottling": _INT32,
        "Enabled": _BOOLEAN,
    },
    "WebhookEventRequest": {
        "EventType": _NULLABLE_STRING,
        "ObjectName": _NULLABLE_STRING,
        "ObjectFields": _STRINGS,
        "EventSources": _STRINGS,
        "CustomPayloadFields": _STRINGS,
        "CustomPayloadTemplate": _NULLABLE_STRING,
        "Enabled": _BOOLEAN,
    },
}
"""The OpenAPI request schemas (property -> type; every property nullable except the event's
required ``EventType``; no other property allowed). tests/emulator/test_webhooks.py checks
this against Caspio's document."""

LOOPBACK_RULE = (
    "the emulator delivers webhooks only to loopback http URLs "
    "(http://localhost, http://127.x.x.x or http://[::1], any port)"
)


def _bad(message: str) -> QueryError:
    return QueryError(400, "IncorrectBodyParameter", message)


def _not_found() -> QueryError:
    return QueryError(404, "ObjectNotFound", "Requested object not found")


def check_body(schema: str, body: dict[str, Any]) -> dict[str, Any]:
    """`body` checked against request schema `schema`; returns it keyed by the schema's own
    spelling (property names match case-insensitively, as ASP.NET binds them: guess 42)."""
    props = REQUEST_SCHEMAS[schema]
    by_lower = {k.lower(): k for k in props}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = by_lower.get(key.lower())
        if name is None:
            raise _bad(f"Unknown property '{key}' ({schema} allows {', '.join(props)})")
        kind = props[name]
        if value is None:
            out[name] = None
            continue
        ok = {
            _NULLABLE_STRING: isinstance(value, str),
            _STRINGS: isinstance(value, list) and all(isinstance(x, str) for x in value),
            _INT32: isinstance(value, int)
            and not isinstance(value, bool)
            and -(2**31) <= value < 2**31,
            _BOOLEAN: isinstance(value, bool),
        }[kind]
        if not ok:
            raise _bad(f"Property '{name}' must be {'a ' if kind != _STRINGS else 'an '}{kind}")
        out[name] = value
    return out


def loopback_problem(url: str) -> str | None:
    """Why `url` may not receive deliveries (None: it may): the loopback-http rule."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"'{url}' is not a valid URL: {LOOPBACK_RULE}"
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() != "http" or not host or port == 0:
        return f"'{url}' is refused: {LOOPBACK_RULE}"
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return f"'{url}' is refused: {LOOPBACK_RULE}"


def _loopback_address(host: str, port: int) -> tuple[str, int]:
    """Resolve `host` now and insist that every address is loopback (so a changed hosts file
    cannot send a delivery elsewhere); returns the first."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addrs = [str(info[4][0]) for info in infos]
    if not addrs or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        raise OSError(f"{host} does not resolve to loopback addresses only: not sent")
    return addrs[0], port


# ---------------------------------------------------------------- definitions


@dataclass
class HookEvent:
    """One subscription of a webhook: an event type on one table."""

    id: str
    type: str
    object_name: str
    object_fields: list[str] | None
    sources: list[str]
    payload_fields: list[str] | None
    template: str | None
    status: str
    created: str
    created_by: str | None
    modified: str | None = None
    modified_by: str | None = None
    messages: int = 0
    calls: int = 0
    errors: int = 0

    @property
    def active(self) -> bool:
        return self.status.lower() in ("active", "enabled")

    def wire(self, schema: str) -> dict[str, Any]:
        """The event as the response schema `schema` ("list", "get", "post", "put") has it."""
        out: dict[str, Any] = {"Id": self.id, "Type": self.type, "Status": self.status}
        out["ObjectName"] = self.object_name
        if schema in ("list", "get"):
            out["ObjectId"] = self.object_name
        out["ObjectFields"] = self.object_fields
        out["EventSources"] = list(self.sources)
        out["CustomPayloadFields"] = self.payload_fields
        out["CustomPayloadTemplate"] = self.template
        if schema == "get":
            out.update(Messages=self.messages, Calls=self.calls, Errors=self.errors)
        return _with_audit(out, self, schema)


def _with_audit(out: dict[str, Any], item: Any, schema: str) -> dict[str, Any]:
    """The audit fields a webhook and an event answer alike (POST answers omit the changes)."""
    if schema != "post":
        out["LastModified"] = item.modified
        out["ModifiedBy"] = item.modified_by
    out["DateCreated"] = item.created
    out["CreatedBy"] = item.created_by
    return out


@dataclass
class Hook:
    """One outgoing webhook: where messages go, and its events."""

    id: str
    name: str
    description: str | None
    urls: list[str]
    throttling: int
    secret: str
    status: str
    created: str
    created_by: str | None
    modified: str | None = None
    modified_by: str | None = None
    events: list[HookEvent] = field(default_factory=list)
    messages: int = 0
    calls: int = 0
    errors: int = 0

    def wire(self, schema: str) -> dict[str, Any]:
        """The webhook as response schema `schema` ("list", "get", "post", "put") has it: only
        the creation answer carries the Secret (no other schema has a place for it)."""
        out: dict[str, Any] = {"Id": self.id}
        if schema != "post":
            out["Status"] = self.status
        out.update(
            Name=self.name,
            Description=self.description,
            OutgoingUrls=list(self.urls),
            CallThrottling=self.throttling,
        )
        if schema == "post":
            out["Secret"] = self.secret
        if schema == "get":
            out.update(
                Events=len(self.events),
                Messages=self.messages,
                Calls=self.calls,
                Errors=self.errors,
            )
        return _with_audit(out, self, schema)


def _opt_list(value: Any) -> list[str] | None:
    return [str(x) for x in value] if isinstance(value, list) else None


def hook_from_dataset(raw: dict[str, Any]) -> Hook:
    """A dataset's ``outgoingWebhooks`` item (OpenAPI keys, events under ``events``)."""
    hook = Hook(
        id=str(raw.get("Id") or uuid.uuid4()),
        name=str(raw.get("Name") or ""),
        description=raw.get("Description"),
        urls=_opt_list(raw.get("OutgoingUrls")) or [],
        throttling=int(raw.get("CallThrottling") or MAX_CALL_THROTTLING),
        secret=str(raw.get("Secret") or secrets.token_hex(16)),
        status=str(raw.get("Status") or "Active"),
        created=str(raw.get("DateCreated") or "2024-01-01T00:00:00"),
        created_by=raw.get("CreatedBy"),
        modified=raw.get("LastModified"),
        modified_by=raw.get("ModifiedBy"),
        messages=int(raw.get("Messages") or 0),
        calls=int(raw.get("Calls") or 0),
        errors=int(raw.get("Errors") or 0),
    )
    for ev in raw.get("events") or []:
        hook.events.append(
            HookEvent(
                id=str(ev.get("Id") or uuid.uuid4()),
                type=str(ev.get("Type") or ev.get("EventType") or ""),
                object_name=str(ev.get("ObjectName") or ""),
                object_fields=_opt_list(ev.get("ObjectFields")) or None,
                sources=_opt_list(ev.get("EventSources")) or list(EVENT_SOURCES),
                payload_fields=_opt_list(ev.get("CustomPayloadFields")),
                template=ev.get("CustomPayloadTemplate"),
                status=str(ev.get("Status") or "Active"),
                created=str(ev.get("DateCreated") or hook.created),
                created_by=ev.get("CreatedBy"),
                modified=ev.get("LastModified"),
                modified_by=ev.get("ModifiedBy"),
                messages=int(ev.get("Messages") or 0),
                calls=int(ev.get("Calls") or 0),
                errors=int(ev.get("Errors") or 0),
            )
        )
    return hook


# ---------------------------------------------------------------- delivery records


@dataclass
class WebhookDelivery:
    """One delivery attempt (or a message that could not be sent at all), for tests:
    `status` is the receiver's HTTP status (None: no answer, see `error`), `attempt` counts
    from 1 per (message, URL), `final` is True when no redelivery follows (success, or given
    up). `payload` is exactly the JSON body that was POSTed (``callId`` included)."""

    webhook_id: str
    event_id: str
    message_id: str
    call_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    final: bool
    time: float
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Job:
    hook_id: str
    event_id: str
    message_id: str
    url: str
    payload: dict[str, Any]  # without callId
    attempt: int = 1


# ---------------------------------------------------------------- the hub


class WebhookHub:
    """Webhook definitions, the ``/outgoingWebhooks`` routes, and the delivery thread.

    Implements ``store.ChangeSink``. One lock guards definitions, counters and the queue;
    ``record_changes`` runs under the store's lock and only queues work (the HTTP calls happen
    on the delivery thread, never in a writer's request)."""

    def __init__(
        self,
        store: Store,
        settings: Callable[[], tuple[list[float], float]],
        account_id: str,
        created_by: str,
    ) -> None:
        self.store = store
        self.settings = settings  # -> (retry delays, per-call timeout)
        self.account_id = account_id
        self.created_by = created_by
        self.hooks: list[Hook] = []
        self._cv = threading.Condition(threading.Lock())
        self._queue: list[tuple[float, int, _Job]] = []
        self._seq = 0
        self._inflight = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._deliveries: list[WebhookDelivery] = []

    def load(self, raw: list[dict[str, Any]]) -> None:
        """The dataset's webhooks (served and fired like created ones)."""
        with self._cv:
            self.hooks = [hook_from_dataset(r) for r in raw]

    # -------------------------------------------------------- routes

    def route(self, method: str, segs: list[str], body: dict[str, Any] | None) -> tuple[int, Any]:
        """One ``/outgoingWebhooks/...`` call -> (status, JSON answer or None for no body).
        `body` is the parsed JSON object of a POST or PUT."""
        with self._cv:
            if not segs:
                if method == "GET":
                    return 200, [h.wire("list") for h in self.hooks]
                if method == "POST":
                    return 201, self._create_hook(body or {}).wire("post")
                raise _method()
            hook = self._hook(segs[0])
            if len(segs) == 1:
                if method == "GET":
                    return 200, hook.wire("get")
                if method == "PUT":
                    self._update_hook(hook, body or {})
                    return 200, hook.wire("put")
                if method == "DELETE":
                    self.hooks.remove(hook)
                    return 204, None
                raise _method()
            if segs[1].lower() != "events" or len(segs) > 3:
                raise _not_found()
            if len(segs) == 2:
                if method == "GET":
                    return 200, [e.wire("list") for e in hook.events]
                if method == "POST":
                    created = self._new_event(hook, body or {})
                    hook.events.append(created)
                    return 201, created.wire("post")
                raise _method()
            ev = next((e for e in hook.events if e.id.lower() == segs[2].lower()), None)
            if ev is None:
                raise _not_found()
            if method == "GET":
                return 200, ev.wire("get")
            if method == "PUT":
                new = self._new_event(hook, body or {}, old=ev)
                hook.events[hook.events.index(ev)] = new
                return 200, new.wire("put")
            if method == "DELETE":
                hook.events.remove(ev)
                return 204, None
            raise _method()

    def _hook(self, hook_id: str) -> Hook:
        hook = next((h for h in self.hooks if h.id.lower() == hook_id.lower()), None)
        if hook is None:
            raise _not_found()
        return hook

    def _check_urls(self, urls: list[str], hook: Hook | None) -> list[str]:
        if not urls:
            raise _bad("OutgoingUrls is required: at least one URL")
        if len({u.lower() for u in urls}) != len(urls):
            raise _bad("OutgoingUrls must be unique")
        for url in urls:
            problem = loopback_problem(url)
            if problem:
                raise _bad(f"OutgoingUrls: {problem}")
            for other in self.hooks:
                if other is not hook and url.lower() in (u.lower() for u in other.urls):
                    raise _bad(f"OutgoingUrls: '{url}' is already used by webhook '{other.name}'")
        return list(urls)

    def _check_name(self, name: str | None, hook: Hook | None) -> str:
        if name is None or not name.strip():
            raise _bad("Name is required")
        for other in self.hooks:
            if other is not hook and other.name.lower() == name.strip().lower():
                raise _bad(f"A webhook named '{name}' already exists")
        return name.strip()

    @staticmethod
    def _check_throttling(value: int | None) -> int:
        if value is None:
            return MAX_CALL_THROTTLING
        if not 0 < value <= MAX_CALL_THROTTLING:
            raise _bad(f"CallThrottling must be between 1 and {MAX_CALL_THROTTLING}")
        return value

    def _create_hook(self, body: dict[str, Any]) -> Hook:
        b = check_body("WebhookPostRequest", body)
        hook = Hook(
            id=str(uuid.uuid4()),
            name=self._check_name(b.get("Name"), None),
            description=b.get("Description"),
            urls=self._check_urls(b.get("OutgoingUrls") or [], None),
            throttling=self._check_throttling(b.get("CallThrottling")),
            secret=secrets.token_urlsafe(24),
            status="Active",
            created=self.store.now_text(),
            created_by=self.created_by,
        )
        self.hooks.append(hook)
        return hook

    def _update_hook(self, hook: Hook, body: dict[str, Any]) -> None:
        """PUT: the properties given change, the others stay (at least one is required);
        ``Enabled`` sets the status of the webhook and of all its events."""
        b = check_body("WebhookPutRequest", body)
        if not any(v is not None for v in b.values()):
            raise _bad("At least one of Name, Description, OutgoingUrls, CallThrottling, Enabled")
        name = self._check_name(b["Name"], hook) if b.get("Name") is not None else hook.name
        urls = hook.urls
        if b.get("OutgoingUrls") is not None:
            urls = self._check_urls(b["OutgoingUrls"], hook)
        throttling = hook.throttling
        if b.get("CallThrottling") is not None:
            throttling = self._check_throttling(b["CallThrottling"])
        hook.name, hook.urls, hook.throttling = name, urls, throttling
        if b.get("Description") is not None:
            hook.description = b["Description"]
        if b.get("Enabled") is not None:
            hook.status = "Active" if b["Enabled"] else "Inactive"
            for ev in hook.events:
                ev.status = hook.status
        hook.modified, hook.modified_by = self.store.now_text(), self.created_by

    def _table_fields(self, t: Table, names: list[str] | None, what: str) -> list[str] | None:
        if names is None:
            return None
        out = []
        for n in names:
            if n.upper() == "PK_ID" and what == "CustomPayloadFields":
                out.append("PK_ID")
                continue
            f = t.field(n)
            if f is None or f.Name.upper() == "PK_ID" or f.Type == "PASSWORD":
                raise _bad(f"{what}: '{n}' is not a field of table '{t.name}'")
            out.append(f.Name)
        return out

    def _new_event(
        self, hook: Hook, body: dict[str, Any], old: HookEvent | None = None
    ) -> HookEvent:
        """POST or PUT of an event: the whole definition (PUT replaces it; an optional
        property left out takes its default, as on POST)."""
        b = check_body("WebhookEventRequest", body)
        etype = b.get("EventType")
        if not etype:
            raise _bad("EventType is required")
        canon = next((e for e in EVENT_TYPES if e.lower() == etype.lower()), None)
        if canon is None:
            raise _bad(f"EventType '{etype}' is not one of {', '.join(EVENT_TYPES)}")
        name = b.get("ObjectName")
        if not name:
            raise _bad("ObjectName is required: a table name")
        t = self.store.table(name)
        if t is None:
            raise _bad(f"ObjectName '{name}' is not a table")
        fields = self._table_fields(t, b.get("ObjectFields"), "ObjectFields")
        if fields and canon != "table.recordUpdate":
            raise _bad("ObjectFields applies only to table.recordUpdate")
        sources = []
        for s in b.get("EventSources") or []:
            src = next((x for x in EVENT_SOURCES if x.lower() == s.lower()), None)
            if src is None:
                raise _bad(f"EventSources: '{s}' is not one of {', '.join(EVENT_SOURCES)}")
            if src not in sources:
                sources.append(src)
        enabled = b.get("Enabled")
        now = self.store.now_text()
        return HookEvent(
            id=old.id if old else str(uuid.uuid4()),
            type=canon,
            object_name=t.name,
            object_fields=fields or None,
            sources=sources or list(EVENT_SOURCES),
            payload_fields=self._table_fields(
                t, b.get("CustomPayloadFields"), "CustomPayloadFields"
            ),
            template=b.get("CustomPayloadTemplate"),
            status="Inactive" if enabled is False else "Active",
            created=old.created if old else now,
            created_by=old.created_by if old else self.created_by,
            modified=now if old else None,
            modified_by=self.created_by if old else None,
            messages=old.messages if old else 0,
            calls=old.calls if old else 0,
            errors=old.errors if old else 0,
        )

    # -------------------------------------------------------- changes -> messages

    def watches(self, table: str) -> bool:
        key = table.lower()
        with self._cv:
            return any(
                ev.active and ev.object_name.lower() == key for h in self.hooks for ev in h.events
            )

    def record_changes(
        self,
        table: Table,
        kind: str,
        before: list[dict[str, Any]],
        after: list[dict[str, Any]],
        source: str,
    ) -> None:
        etype = _KIND_EVENT[kind]
        key = table.name.lower()
        stamps = {f.Name for f in table.fields if f.Type == "TIMESTAMP"}
        old_rows = {r["PK_ID"]: r for r in before}
        event_date = self.store.now_utc().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        with self._cv:
            for hook in self.hooks:
                for ev in hook.events:
                    if not (ev.active and ev.type == etype and ev.object_name.lower() == key):
                        continue
                    if source not in ev.sources:
                        continue
                    rows = before if kind == "delete" else after
                    for row in rows:
                        if kind == "update" and not _changed(
                            old_rows.get(row["PK_ID"]), row, ev.object_fields, stamps
                        ):
                            continue
                        self._message(hook, ev, table.name, row, event_date)

    def _message(
        self, hook: Hook, ev: HookEvent, table: str, row: dict[str, Any], event_date: str
    ) -> None:
        """One message (one record) to every URL of `hook`; called with the lock held."""
        data = row
        if ev.payload_fields:
            wanted = {"pk_id", *(n.lower() for n in ev.payload_fields)}
            data = {k: v for k, v in row.items() if k.lower() in wanted}
        message_id = str(uuid.uuid4())
        payload: dict[str, Any] = {
            "eventId": ev.id,
            "messageId": message_id,
            "webhookId": hook.id,
            "callId": None,
            "accountId": self.account_id,
            "secret": hook.secret,
            "eventDate": event_date,
            "eventType": ev.type,
            "objectName": table,
            "data": [data],
        }
        hook.messages += 1
        ev.messages += 1
        for url in hook.urls:
            job = _Job(hook.id, ev.id, message_id, url, payload)
            problem = loopback_problem(url)
            if problem:
                self._record(job, str(uuid.uuid4()), None, f"not sent: {problem}", final=True)
                continue
            self._push(time.monotonic(), job)

    def _push(self, due: float, job: _Job) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (due, self._seq, job))
        self._ensure_thread()
        self._cv.notify_all()

    def _ensure_thread(self) -> None:
        """Start the delivery thread if work waits and none runs (lock held)."""
        if self._closed or not self._queue:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="caspio-emulator:webhooks", daemon=True
            )
            self._thread.start()

    def _record(
        self, job: _Job, call_id: str, status: int | None, error: str | None, final: bool
    ) -> WebhookDelivery:
        payload = dict(job.payload, callId=call_id)
        d = WebhookDelivery(
            job.hook_id,
            job.event_id,
            job.message_id,
            call_id,
            job.url,
            job.attempt,
            status,
            error,
            final,
            time.time(),
            payload,
        )
        self._deliveries.append(d)
        return d

    # -------------------------------------------------------- the delivery thread

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closed and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cv.wait(wait)
                if self._closed:
                    return
                _, _, job = heapq.heappop(self._queue)
                hook = next((h for h in self.hooks if h.id == job.hook_id), None)
                if hook is None:  # deleted since: its messages go nowhere
                    self._record(job, str(uuid.uuid4()), None, "webhook deleted", final=True)
                    self._cv.notify_all()
                    continue
                self._inflight += 1
                delays, timeout = self.settings()
            call_id = str(uuid.uuid4())
            body = orjson.dumps(dict(job.payload, callId=call_id))
            status, error = _post(job.url, body, timeout)
            ok = status is not None and 200 <= status < 300
            with self._cv:
                self._inflight -= 1
                retry = not ok and job.attempt <= len(delays)
                self._record(job, call_id, status, error, final=not retry)
                hook.calls += 1
                ev = next((e for e in hook.events if e.id == job.event_id), None)
                if ev is not None:
                    ev.calls += 1
                if not ok:
                    hook.errors += 1
                    if ev is not None:
                        ev.errors += 1
                if retry:
                    nxt = _Job(
                        job.hook_id,
                        job.event_id,
                        job.message_id,
                        job.url,
                        job.payload,
                        job.attempt + 1,
                    )
                    self._push(time.monotonic() + delays[job.attempt - 1], nxt)
                self._cv.notify_all()

    def deliveries(self) -> list[WebhookDelivery]:
        with self._cv:
            return list(self._deliveries)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued delivery is done or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._queue or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._cv.wait(left)
            return True

    def close(self) -> None:
        """Stop the delivery thread (queued deliveries wait for ``open``)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            thread = self._thread
            self._thread = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def open(self) -> None:
        """Resume deliveries after ``close``."""
        with self._cv:
            self._closed = False
            self._ensure_thread()


def _method() -> QueryError:
    return QueryError(405, "MethodNotAllowed", "The requested method is not supported")


def _changed(
    old: dict[str, Any] | None, new: dict[str, Any], only: list[str] | None, stamps: set[str]
) -> bool:
    """Whether an update changed a value (TIMESTAMP stamps aside: every update moves them);
    with ObjectFields, only those fields count."""
    if old is None:
        return True
    names = only if only else [k for k in new if k not in stamps and k != "PK_ID"]
    return any(old.get(n) != new.get(n) for n in names)


def _post(url: str, body: bytes, timeout: float) -> tuple[int | None, str | None]:
    """POST `body` to a loopback `url` (re-checked); (status, None) or (None, error)."""
    problem = loopback_problem(url)
    if problem:
        return None, f"not sent: {problem}"
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        host, port = _loopback_address(parts.hostname or "", parts.port or 80)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request(
                "POST",
                path,
                body,
                {
                    "Content-Type": "application/json; charset=utf-8",
                    "Host": parts.netloc,
                    "User-Agent": "Caspio-Outgoing-Webhooks (caspio-emulator)",
                },
            )
            resp = conn.getresponse()
            resp.read()
            return resp.status, None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"


__all__ = [
    "EVENT_SOURCES",
    "EVENT_TYPES",
    "PYTHON_SOURCE",
    "REQUEST_SCHEMAS",
    "REST_SOURCE",
    "Hook",
    "HookEvent",
    "WebhookDelivery",
    "WebhookHub",
    "check_body",
    "loopback_problem",
]
