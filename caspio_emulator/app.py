"""HTTP routes, Caspio's error shapes, request ids, OAuth, and the fault machinery on the socket.

Stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive: a benchmark pages a table over
one connection, and the raw socket is ours, which the faults need (a TCP reset, a body cut
short after an honest ``Content-Length``, a hang past the client's timeout). Every answer is
written in one ``sendall`` with ``Content-Length`` and carries ``X-Caspio-Request-ID``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import secrets
import socket
import struct
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from . import attachments, design, webhooks
from .faults import Knobs, RequestLogEntry
from .sql import QueryError, compile_query, star_columns
from .store import Store, Table, View

V3_ROOT = "/integrations/rest/v3"
V2_ROOT = "/rest/v2"
MAX_URI = 2047
JSON_TYPE = "application/json; charset=utf-8"
FILES_NS = uuid.UUID("6f1c0a52-44c8-4a77-9f5d-2f8b1c3e7a10")


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An answer in Caspio's error shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found() -> ApiError:
    return ApiError(404, "ObjectNotFound", "Requested object not found")


def bad_param(message: str) -> ApiError:
    return ApiError(400, "IncorrectQueryParameter", message)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, orjson.dumps(obj), JSON_TYPE, headers or {})


# ---------------------------------------------------------------- files area


@dataclass
class Folder:
    name: str
    path: str
    key: str
    created: str


@dataclass
class StoredFile:
    name: str
    path: str
    folder: str  # parent folder path, "/" for root
    key: str
    content: bytes
    content_type: str
    created: str
    modified: str

    def info(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "ExternalKey": self.key,
            "Size": len(self.content),
            "ContentType": self.content_type,
            "DateCreated": self.created,
            "LastModified": self.modified,
        }


class FilesArea:
    """The account's Files area: folders and files keyed by deterministic GUIDs (uuid5 of the
    path), so keys are stable across runs and tests can compute them."""

    def __init__(self) -> None:
        self.folders: dict[str, Folder] = {}
        self.files: dict[str, StoredFile] = {}

    @staticmethod
    def key_for(path: str) -> str:
        return str(uuid.uuid5(FILES_NS, path.lower()))

    def add_folder(self, path: str, created: str) -> None:
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:i])
            if sub.lower() not in self.folders:
                self.folders[sub.lower()] = Folder(parts[i - 1], sub, self.key_for(sub), created)

    def add_file(self, path: str, content: bytes, ctype: str, created: str, modified: str) -> None:
        parent, _, name = path.rpartition("/")
        parent = parent or "/"
        if parent != "/":
            self.add_folder(parent, created)
        f = StoredFile(name, path, parent, self.key_for(path), content, ctype, created, modified)
        self.files[f.key] = f

    def folder_by_key(self, key: str | None) -> str | None:
        """A folder key -> its path ("/" for empty key); None when unknown."""
        if not key:
            return "/"
        for f in self.folders.values():
            if f.key.lower() == key.lower():
                return f.path
        return None

    def by_path(self, path: str) -> StoredFile | None:
        want = "/" + "/".join(p for p in path.split("/") if p)
        for f in self.files.values():
            if f.path.lower() == want.lower():
                return f
        return None


# ---------------------------------------------------------------- the application


class App:
    """Everything the handlers need; one per Emulator."""

    def __init__(
        self,
        store: Store,
        knobs: Knobs,
        client_id: str,
        client_secret: str,
        host_name: str,
    ) -> None:
        self.store = store
        self.knobs = knobs
        self.client_id = client_id
        self.client_secret = client_secret
        self.host_name = host_name
        self.base_url = ""
        self.files = FilesArea()
        self.bridge_apps: list[dict[str, Any]] = []
        self.directories: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        # outgoing webhooks: definitions, routes and deliveries; told of every record change
        self.hooks = webhooks.WebhookHub(
            store,
            lambda: (list(knobs.settings.webhook_retry_seconds), knobs.settings.webhook_timeout),
            account_id=host_name.split(".")[0],
            created_by=client_id,
        )
        store.sink = self.hooks
        self.tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self.refresh_tokens: OrderedDict[str, float] = OrderedDict()
        self.token_lock = threading.Lock()
        self.stop_event = threading.Event()

    # -------------------------------------------------------- OAuth

    def issue(self, refresh: str | None = None) -> dict[str, Any]:
        ttl = self.knobs.settings.token_ttl
        access = secrets.token_urlsafe(300)
        with self.token_lock:
            self.tokens[access] = time.monotonic() + ttl
            if refresh is None:
                refresh = secrets.token_hex(32)
                self.refresh_tokens[refresh] = time.time()
                while len(self.refresh_tokens) > 1000:  # Caspio keeps at most 1,000
                    self.refresh_tokens.popitem(last=False)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(ttl),
            "refresh_token": refresh,
        }

    def expire_tokens(self, sparing_seconds: float = 0.0) -> None:
        # a token issued within the last ``sparing_seconds`` expires later than this bound
        spared_after = time.monotonic() + self.knobs.settings.token_ttl - sparing_seconds
        with self.token_lock:
            for k, expiry in self.tokens.items():
                if sparing_seconds <= 0 or expiry <= spared_after:
                    self.tokens[k] = 0.0

    def token_call(self, headers: Any, body: bytes) -> Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                cid = secret = None
        grant = form.get("grant_type")
        headers_out = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if grant not in ("client_credentials", "refresh_token"):
            return json_response(400, {"error": "unsupported_grant_type"}, headers_out)
        if cid != self.client_id or secret != self.client_secret:
            return json_response(400, {"error": "invalid_client"}, headers_out)
        if grant == "refresh_token":
            rt = form.get("refresh_token") or ""
            with self.token_lock:
                known = rt in self.refresh_tokens
            if not known:
                return json_response(400, {"error": "invalid_grant"}, headers_out)
            return json_response(200, self.issue(refresh=rt), headers_out)
        return json_response(200, self.issue(), headers_out)

    def check_token(self, headers: Any) -> None:
        auth = headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer "):
            raise ApiError(401, "Unauthorized", "Authorization has been denied for this request.")
        token = auth[7:].strip()
        with self.token_lock:
            expiry = self.tokens.get(token)
        if expiry is None:
            raise ApiError(401, "Unauthorized", "Authorization has been denied for this request.")
        if expiry <= time.monotonic():
            if self.knobs.settings.stale_token_400:
                raise bad_param("Invalid or expired access token")
            raise ApiError(401, "Unauthorized", "Authorization has been denied for this request.")

    # -------------------------------------------------------- routing

    def route(self, method: str, path: str, query: str, headers: Any, body: bytes) -> Response:
        low = path.lower()
        if low.startswith(V3_ROOT + "/") or low == V3_ROOT:
            rest = path[len(V3_ROOT) :]
        elif low.startswith(V2_ROOT + "/") or low == V2_ROOT:
            rest = path[len(V2_ROOT) :]
        else:
            raise not_found()
        self.check_token(headers)
        segs = [unquote(s) for s in rest.split("/") if s]
        params: dict[str, str] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            params[k.lower()] = v
        if not segs:
            raise not_found()
        head = segs[0].lower()
        if method in ("POST", "PUT", "DELETE") and body:
            # only a body needs the JSON type: Caspio's own n8n node sends its DELETEs bare
            ctype = (headers.get("Content-Type") or "").lower()
            if "application/json" not in ctype:
                raise ApiError(415, "UnsupportedMediaType", "Content-Type must be application/json")
        if head == "tables":
            return self.tables_route(method, segs[1:], params, body)
        if head == "views":
            return self.views_route(method, segs[1:], params, body)
        if head == "outgoingwebhooks":
            return self.webhooks_route(method, segs[1:], body)
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "The requested method is not supported")
        if head == "files":
            return self.files_route(segs[1:], params)
        if head == "bridgeapplications":
            return self.apps_route(segs[1:])
        if head == "directories":
            return self.directories_route(segs[1:], params)
        if head == "dataimportexporttasks":
            return self.tasks_route(segs[1:])
        raise not_found()

    # -------------------------------------------------------- tables & views

    def tables_route(
        self, method: str, segs: list[str], params: dict[str, str], body: bytes
    ) -> Response:
        store = self.store
        if not segs:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "Creating tables is not emulated")
            return json_response(200, {"Result": [t.name for t in store.tables.values()]})
        t = store.table(segs[0])
        if t is None:
            raise not_found()
        sub = [s.lower() for s in segs[1:]]
        if not sub:
            self._get_only(method)
            return json_response(200, {"Result": {"Name": t.name, "Note": t.note}})
        if sub[0] == "fields":
            return self.fields_route(method, t, segs[2:], body)
        if sub[0] == "records" and len(sub) == 1:
            if method == "GET":
                return self.records_get(t.scope, params)
            if method == "POST":
                return self.records_post(t, params, body)
            if method == "PUT":
                return self.records_put(t, params, body)
            if method == "DELETE":
                return self.records_delete(t, params)
        if sub[0] == "passwordfields" and len(sub) == 1:
            self._get_only(method)
            return json_response(
                200, {"Result": [f.Name for f in t.fields if f.Type == "PASSWORD"]}
            )
        if sub[0] == "attachments":
            return self.attachment_route(method, t, segs[2:], params)
        raise not_found()

    def fields_route(self, method: str, t: Table, segs: list[str], body: bytes) -> Response:
        """List/get a table's fields; add (POST), change (PUT), delete them (design.py)."""
        if not segs:
            if method == "POST":
                design.add_field(self.store, t.name, self._json_body(body))
                return Response(201, b"", None)
            self._get_only(method)
            return json_response(200, {"Result": [f.to_wire() for f in t.fields]})
        if len(segs) > 1:
            raise ApiError(404, "FieldNotFound", f"Field '{segs[0]}' not found")
        if method == "PUT":
            design.update_field(self.store, t.name, segs[0], self._json_body(body))
            return Response(204, b"", None)
        if method == "DELETE":
            design.delete_field(self.store, t.name, segs[0])
            return Response(204, b"", None)
        self._get_only(method)
        f = t.field(segs[0])
        if f is None or f.Name.upper() == "PK_ID":  # PK_ID is not a listed field
            raise ApiError(404, "FieldNotFound", f"Field '{segs[0]}' not found")
        return json_response(200, {"Result": f.to_wire()})

    def views_route(
        self, method: str, segs: list[str], params: dict[str, str], body: bytes
    ) -> Response:
        store = self.store
        if not segs:
            self._get_only(method)
            return json_response(200, {"Result": [v.name for v in store.views.values()]})
        v = store.view(segs[0])
        if v is None:
            raise not_found()
        sub = [s.lower() for s in segs[1:]]
        if not sub:
            self._get_only(method)
            return json_response(200, {"Result": {"Name": v.name, "Note": v.note}})
        if sub[0] == "fields":
            self._get_only(method)
            if len(sub) == 1:
                return json_response(200, {"Result": [f.to_wire(view=True) for f in v.fields]})
            f = v.scope.fields.get(segs[2].lower())
            if f is None or f.Name.upper() == "PK_ID" or len(sub) > 2:
                raise ApiError(404, "FieldNotFound", f"Field '{segs[2]}' not found")
            return json_response(200, {"Result": f.to_wire(view=True)})
        if sub[0] == "records" and len(sub) == 1:
            if method == "GET":
                return self.records_get(v.scope, params)
            raise ApiError(
                405, "MethodNotAllowed", "Writing through views is not supported by the emulator"
            )
        if sub[0] == "attachments":
            return self.attachment_route(method, v, segs[2:], params)
        raise not_found()

    @staticmethod
    def _get_only(method: str) -> None:
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "The requested method is not supported")

    @staticmethod
    def _int_param(params: dict[str, str], name: str) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw.strip())
        except ValueError as exc:
            raise bad_param(f"Invalid value of {name.replace('q.', 'q.')}: '{raw}'") from exc

    @staticmethod
    def _bool_param(params: dict[str, str], name: str) -> bool:
        raw = (params.get(name) or "").strip().lower()
        if raw in ("", "false", "0"):
            return False
        if raw in ("true", "1"):
            return True
        raise bad_param(f"Invalid value of {name}: '{params.get(name)}'")

    def records_get(self, scope: Any, params: dict[str, str]) -> Response:
        page_number = self._int_param(params, "q.pagenumber")
        page_size = self._int_param(params, "q.pagesize")
        limit = self._int_param(params, "q.limit")
        want_info = self._bool_param(params, "q.getpaginationinfo")
        if page_number is not None or page_size is not None:
            page_number = 1 if page_number is None else page_number
            page_size = 25 if page_size is None else page_size
            if not 5 <= page_size <= 1000:
                raise bad_param("q.pageSize must be between 5 and 1000")
            if page_number < 1:
                raise bad_param("q.pageNumber must be 1 or greater")
            take, skip = page_size, (page_number - 1) * page_size
        else:
            limit = 100 if limit is None else limit
            if limit < 1:
                raise bad_param("q.limit must be between 1 and 1000")
            take, skip = min(limit, 1000), 0
            page_number, page_size = 1, take
        comp = compile_query(
            scope,
            self.store.resolve_scope,
            self.store.now_text,
            select=params.get("q.select"),
            where=params.get("q.where"),
            group_by=params.get("q.groupby"),
            order_by=params.get("q.orderby"),
        )
        rows, total = self.store.run_json(comp, take, skip, want_info)
        # the rows are UTF-8 JSON already: the body is one join, never re-parsed or re-encoded
        tail = b"]}"
        if want_info:
            info = {"TotalCount": total, "PageNumber": page_number, "PageSize": page_size}
            tail = b'],"Pagination":' + orjson.dumps(info) + b"}"
        return Response(200, b'{"Result":[' + b",".join(rows) + tail, JSON_TYPE)

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            obj = orjson.loads(body or b"null")
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "IncorrectBodyParameter", f"Invalid JSON body: {exc}") from exc
        if not isinstance(obj, dict):
            raise ApiError(400, "IncorrectBodyParameter", "The body must be one JSON object")
        return obj

    @staticmethod
    def _where(params: dict[str, str]) -> str:
        where = params.get("q.where") or params.get("where")
        if not where or not where.strip():
            raise bad_param("q.where is required for updates and deletes")
        return where

    def records_post(self, t: Table, params: dict[str, str], body: bytes) -> Response:
        values = self._json_body(body)
        pk = self.store.insert(t.name, values, source=webhooks.REST_SOURCE)
        if (params.get("response") or "").lower() == "rows":
            return json_response(201, {"Result": self.store.rows_by_pk(t, [pk])})
        return Response(201, b"", None)

    def records_put(self, t: Table, params: dict[str, str], body: bytes) -> Response:
        values = self._json_body(body)
        where = self._where(params)
        pks = self.store.update(t.name, where, values, source=webhooks.REST_SOURCE)
        rows = self.store.rows_by_pk(t, pks) if params.get("response", "").lower() == "rows" else []
        return json_response(200, {"RecordsAffected": len(pks), "Result": rows})

    def records_delete(self, t: Table, params: dict[str, str]) -> Response:
        n = self.store.delete(t.name, self._where(params), source=webhooks.REST_SOURCE)
        return json_response(200, {"RecordsAffected": n})

    def attachment_route(
        self, method: str, obj: Table | View, segs: list[str], params: dict[str, str]
    ) -> Response:
        """``{obj}/attachments/{field}/fileInfo`` and ``/{PK_ID}`` (attachments.py); the
        OpenAPI's attachment writes (upload, rename, DELETE) are not emulated: 405."""
        if len(segs) not in (1, 2):
            raise not_found()
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "Attachment writes are not emulated")
        if len(segs) == 1:
            raise not_found()
        f = attachments.attachment_field(obj.scope, segs[0])
        if segs[1].lower() == "fileinfo":
            where = attachments.where_param(params)
            if isinstance(obj, View):
                result = attachments.view_file_info(self.store, obj, f, where)
            else:
                result = attachments.table_file_info(self.store, obj, f, where)
            return json_response(200, {"Result": result})
        if isinstance(obj, View):
            a = attachments.view_file(self.store, obj, f, segs[1])
        else:
            a = attachments.table_file(self.store, obj, f, segs[1])
        return Response(
            200,
            a.content,
            a.content_type,
            {"Content-Disposition": f'attachment; filename="{a.name}"'},
        )

    # -------------------------------------------------------- files

    def _paging(self, params: dict[str, str]) -> tuple[int, int]:
        number = self._int_param(params, "pagenumber") or 1
        size = self._int_param(params, "pagesize")
        size = 25 if size is None else size
        if not 5 <= size <= 1000:
            raise bad_param("pageSize must be between 5 and 1000")
        if number < 1:
            raise bad_param("pageNumber must be 1 or greater")
        return number, size

    def files_route(self, segs: list[str], params: dict[str, str]) -> Response:
        area = self.files
        sub = [s.lower() for s in segs]
        if not sub or sub == ["folders"]:
            folder = area.folder_by_key(params.get("externalkey"))
            if folder is None:
                raise not_found()
            number, size = self._paging(params)
            desc = self._bool_param(params, "sortdescending")
            sort = params.get("sortfield") or "Name"
            if not sub:
                items = [
                    f.info() for f in area.files.values() if f.folder.lower() == folder.lower()
                ]
                allowed = {"name", "size", "contenttype", "datecreated", "lastmodified"}
            else:
                items = [
                    {"Name": d.name, "ExternalKey": d.key, "DateCreated": d.created}
                    for d in area.folders.values()
                    if (d.path.rpartition("/")[0] or "/").lower() == folder.lower()
                ]
                allowed = {"name", "datecreated"}
            if sort.lower() not in allowed:
                raise bad_param(f"Invalid sortField '{sort}'")
            key = (
                next(
                    k for k in (items[0].keys() if items else ["Name"]) if k.lower() == sort.lower()
                )
                if items
                else "Name"
            )
            items.sort(
                key=lambda x: str(x[key]).lower() if isinstance(x[key], str) else x[key],
                reverse=desc,
            )
            page = items[(number - 1) * size : number * size]
            return json_response(
                200,
                {
                    "Result": page,
                    "Pagination": {
                        "TotalCount": len(items),
                        "PageNumber": number,
                        "PageSize": size,
                    },
                },
            )
        if sub[0] == "folders" and len(sub) == 2:
            path = area.folder_by_key(segs[1])
            if path is None or path == "/":
                raise not_found()
            d = area.folders[path.lower()]
            return json_response(
                200, {"Result": {"Name": d.name, "ExternalKey": d.key, "DateCreated": d.created}}
            )
        if sub[0] == "path" and len(sub) <= 2:
            file_path = params.get("filepath")
            if not file_path:
                raise bad_param("filePath is required")
            found = area.by_path(file_path)
            if found is None:
                raise not_found()
            if len(sub) == 2:
                if sub[1] != "fileinfo":
                    raise not_found()
                return json_response(200, {"Result": found.info()})
            return self._file_content(found)
        stored = area.files.get(segs[0].lower()) or next(
            (f for f in area.files.values() if f.key.lower() == segs[0].lower()), None
        )
        if stored is None:
            raise not_found()
        if len(sub) == 1:
            return self._file_content(stored)
        if sub[1:] == ["fileinfo"]:
            return json_response(200, {"Result": stored.info()})
        raise not_found()

    @staticmethod
    def _file_content(f: StoredFile) -> Response:
        return Response(
            200,
            f.content,
            f.content_type,
            {"Content-Disposition": f'attachment; filename="{f.name}"'},
        )

    # -------------------------------------------------------- metadata

    def apps_route(self, segs: list[str]) -> Response:
        def item(a: dict[str, Any]) -> dict[str, Any]:
            out = {k: v for k, v in a.items() if k != "datapages"}
            out.setdefault("DataPagesCount", len(a.get("datapages") or []))
            return out

        if not segs:
            return json_response(200, {"Result": [item(a) for a in self.bridge_apps]})
        app = next(
            (
                a
                for a in self.bridge_apps
                if str(a.get("ExternalKey", "")).lower() == segs[0].lower()
            ),
            None,
        )
        if app is None:
            raise not_found()
        if len(segs) == 1:
            return json_response(200, {"Result": item(app)})
        if segs[1].lower() == "datapages":
            pages = app.get("datapages") or []
            if len(segs) == 2:
                return json_response(200, {"Result": pages})
            page = next(
                (p for p in pages if str(p.get("AppKey", "")).lower() == segs[2].lower()), None
            )
            if page is None or len(segs) > 3:
                raise not_found()
            return json_response(200, {"Result": page})
        raise not_found()

    def directories_route(self, segs: list[str], params: dict[str, str]) -> Response:
        if not segs:
            out = []
            for d in self.directories:
                item = {k: v for k, v in d.items() if k != "users"}
                item["NumberOfUsers"] = len(d.get("users") or [])
                out.append(item)
            return json_response(200, {"Result": out})
        table = self.store.directories.get(segs[0].lower())
        if table is None:
            raise not_found()
        if len(segs) == 2 and segs[1].lower() == "users":
            return self.records_get(table.scope, params)
        raise not_found()

    def tasks_route(self, segs: list[str]) -> Response:
        if not segs:
            return json_response(200, {"Result": self.tasks})
        task = next(
            (t for t in self.tasks if str(t.get("ExternalKey", "")).lower() == segs[0].lower()),
            None,
        )
        if task is None or len(segs) > 1:
            raise not_found()
        return json_response(200, {"Result": task})

    def webhooks_route(self, method: str, segs: list[str], body: bytes) -> Response:
        """``/outgoingWebhooks(/{id}(/events(/{eventId})))``: webhooks.py answers."""
        parsed = self._json_body(body) if method in ("POST", "PUT") else None
        status, obj = self.hooks.route(method, segs, parsed)
        if obj is None:
            return Response(status, b"", None)
        return json_response(status, obj)


# ---------------------------------------------------------------- the socket side


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], app: App) -> None:
        self.app = app
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(addr, Handler)

    def close_all(self) -> None:
        with self.sockets_lock:
            socks = list(self.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CaspioEmulator/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections end after 5 minutes
    server: Server

    def setup(self) -> None:
        super().setup()
        self.dropped = False
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except ValueError:
            # the base class flushes wfile after every request; a reset/truncate/hang fault
            # closed it on purpose, which is not an error worth a traceback on stderr
            if not self.dropped:
                raise

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: the request log is the record

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self.dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self.dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self.dispatch("PATCH")

    def read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    # -------------------------------------------------------- answers

    def write(
        self,
        resp: Response,
        request_id: str | None,
        truncate: bool = False,
        dur: float | None = None,
    ) -> None:
        lines = [f"HTTP/1.1 {resp.status} {self.responses.get(resp.status, ('',))[0]}"]
        if request_id:
            lines.append(f"X-Caspio-Request-ID: {request_id}")
        if resp.content_type:
            lines.append(f"Content-Type: {resp.content_type}")
        lines.append(f"Content-Length: {len(resp.body)}")
        lines.append(f"Date: {self.date_time_string()}")
        if dur is not None:
            lines.append(f"Server-Timing: app;dur={dur:.3f}")
        for k, v in resp.headers.items():
            lines.append(f"{k}: {v}")
        if self.close_connection or truncate:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body = resp.body[: max(1, len(resp.body) // 2)] if truncate else resp.body
        self.wfile.write(head + body)
        if truncate:
            self.close_connection = True
            self.drop(reset=False)

    def drop(self, reset: bool) -> None:
        """Close the socket now; with `reset`, make the kernel send a TCP RST."""
        self.close_connection = True
        self.dropped = True
        sock = self.connection
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.rfile.close()
            self.wfile.close()
        except OSError:
            pass
        sock.close()

    def error_response(self, err: ApiError | QueryError, path: str, request_id: str) -> Response:
        body = {
            "Code": err.code,
            "Message": err.message,
            "Resource": self.server.app.base_url + path,
            "RequestId": request_id,
        }
        return json_response(err.status, body, getattr(err, "headers", None))

    def dispatch(self, method: str) -> None:
        app = self.server.app
        target = self.path
        split = urlsplit(target)
        path, query = split.path, split.query
        if path.startswith("/__emulator__"):
            body = self.read_body()
            resp = admin(app, method, path, query, body)
            self.write(resp, None)
            return
        start = time.perf_counter()
        request_id = str(uuid.uuid4())
        is_token = path.lower() == "/oauth/token"
        decision, latency = app.knobs.admit()
        body = self.read_body()
        if latency > 0:
            app.stop_event.wait(latency)

        def record(status: int) -> None:
            # logged before the answer leaves, so a client that has its answer sees its entry
            app.knobs.record(
                RequestLogEntry(
                    method=method,
                    path=path,
                    query=query,
                    status=status,
                    is_token=is_token,
                    fault=decision,
                    request_id=request_id,
                    duration_ms=(time.perf_counter() - start) * 1000,
                    time=time.time(),
                )
            )

        if decision == "reset":
            record(0)
            self.drop(reset=True)
            return
        if decision == "hang":
            app.stop_event.wait(app.knobs.settings.hang_seconds)
            record(0)
            self.drop(reset=False)
            return
        t0 = time.perf_counter()
        resp = self.answer(app, method, path, query, body, request_id, decision, is_token)
        dur = (time.perf_counter() - t0) * 1000
        record(resp.status)
        self.write(resp, request_id, truncate=decision == "truncate", dur=dur)

    def answer(
        self,
        app: App,
        method: str,
        path: str,
        query: str,
        body: bytes,
        request_id: str,
        decision: str | None,
        is_token: bool,
    ) -> Response:
        try:
            if len(self.path) > MAX_URI:
                return Response(414, b"", None)
            if decision == "quota":
                raise ApiError(
                    403, "ApiCallsLimitExceeded", "The monthly API calls limit has been exceeded"
                )
            if decision in ("throttle", "429"):
                retry = app.knobs.retry_after_seconds()
                headers = {"Retry-After": str(retry)} if retry is not None else {}
                raise ApiError(429, "TooManyRequests", "Too many requests", headers)
            if decision == "500":
                raise ApiError(500, "InternalServerError", "An error has occurred.")
            if decision == "503":
                raise ApiError(503, "ServiceUnavailable", "The service is temporarily unavailable.")
            if decision == "stale_token":
                raise bad_param("Invalid or expired access token")
            if is_token:
                if method != "POST":
                    raise ApiError(405, "MethodNotAllowed", "Use POST")
                return app.token_call(self.headers, body)
            return app.route(method, path, query, self.headers, body)
        except (ApiError, QueryError) as err:
            return self.error_response(err, path, request_id)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer in Caspio's shape
            return self.error_response(
                ApiError(500, "InternalServerError", f"Emulator error: {exc!r}"), path, request_id
            )


def admin(app: App, method: str, path: str, query: str, body: bytes) -> Response:
    """The ``/__emulator__/*`` knobs over HTTP (not API calls: not counted, not logged)."""
    from . import faults

    name = path[len("/__emulator__") :].strip("/").lower()
    try:
        payload = orjson.loads(body) if body.strip() else {}
        if name == "log" and method == "GET":
            return json_response(
                200,
                {"calls": app.knobs.calls, "log": [e.to_json() for e in app.knobs.log]},
            )
        if name == "reset" and method == "POST":
            app.knobs.reset_log()
            return json_response(200, {"ok": True})
        if name == "config" and method == "GET":
            s = app.knobs.settings
            return json_response(200, {k: getattr(s, k) for k in s.__dataclass_fields__})
        if name == "config" and method == "POST":
            if not isinstance(payload, dict):
                raise ValueError("config body is a JSON object")
            app.knobs.configure(**payload)
            return json_response(200, {"ok": True})
        if name == "faults" and method == "POST":
            script = payload.get("script") if isinstance(payload, dict) else None
            if not isinstance(script, list):
                raise ValueError('faults body is {"script": [...]}')
            app.knobs.script_faults([str(x) for x in script])
            return json_response(200, {"ok": True, "pending": len(app.knobs.script)})
        if name == "expire-tokens" and method == "POST":
            app.expire_tokens()
            return json_response(200, {"ok": True})
        if name == "clock" and method == "POST":
            from datetime import datetime

            now = payload.get("now") if isinstance(payload, dict) else None
            if now is None:
                from .store import real_clock

                app.store.clock = real_clock
            else:
                frozen = datetime.fromisoformat(str(now).replace("Z", "+00:00"))
                app.store.clock = lambda: frozen
            return json_response(200, {"ok": True})
        if name == "health" and method == "GET":
            return json_response(200, {"ok": True, "faults": list(faults.FAULT_KINDS)})
    except (ValueError, TypeError) as exc:
        return json_response(400, {"error": str(exc)})
    return json_response(404, {"error": f"no admin endpoint {method} {path}"})


__all__ = ["App", "Server", "Handler", "FilesArea", "star_columns", "_now_iso"]
