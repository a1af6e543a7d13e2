"""DATASET.md loader (strict: every error names its table/field/row) and the synthetic generator.

The loader validates the whole file before anything is built, so a bad dataset fails with one
precise message instead of a half-built account. The generator writes stored values straight
into SQLite in batches (``executemany``), computing each value from the row index alone, so it is
deterministic and fast enough for a 1,000,000-row table.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .store import Store, Table
from .wire import LIST_TYPES, Field, WireError, list_to_stored, make_field, to_date, to_stored

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
TOP_KEYS = {
    "account",
    "tables",
    "views",
    "files",
    "folders",
    "bridgeApplications",
    "directories",
    "dataImportExportTasks",
    "outgoingWebhooks",
    "description",
}
FILE_DATE = "2024-01-15T09:30:00"


class DatasetError(ValueError):
    """A dataset file that does not follow DATASET.md; the message names the culprit."""


@dataclass
class TableSpec:
    name: str
    note: str
    fields: list[Field]
    rows: list[dict[str, Any]]  # stored values keyed by column, "PK_ID" optional
    attachments: list[tuple[int, str, dict[str, Any]]]  # (row index, field, attachment)


@dataclass
class ViewSpec:
    name: str
    note: str
    from_tables: list[str]
    join: str
    fields: list[str]


@dataclass
class FileSpec:
    path: str
    content: bytes
    content_type: str
    created: str
    modified: str


@dataclass
class Dataset:
    account: dict[str, str] = field(default_factory=dict)
    tables: list[TableSpec] = field(default_factory=list)
    views: list[ViewSpec] = field(default_factory=list)
    files: list[FileSpec] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    bridge_applications: list[dict[str, Any]] = field(default_factory=list)
    directories: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)


def _content(where: str, spec: dict[str, Any]) -> bytes:
    if "Base64" in spec:
        try:
            return base64.b64decode(spec["Base64"], validate=True)
        except Exception as exc:  # noqa: BLE001
            raise DatasetError(f"{where}: Base64 is not valid base64") from exc
    text = spec.get("Text", "")
    if not isinstance(text, str):
        raise DatasetError(f"{where}: Text must be a string")
    return text.encode()


def _attachment(where: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"Name": value, "Text": f"attachment {value}"}
    if not isinstance(value, dict) or not isinstance(value.get("Name"), str):
        raise DatasetError(f"{where}: an attachment is a file name or {{'Name', 'Text'|'Base64'}}")
    ctype = value.get("ContentType") or mimetypes.guess_type(value["Name"])[0]
    return {
        "Name": value["Name"],
        "ContentType": ctype or "application/octet-stream",
        "Content": _content(where, value),
    }


def load_dataset(source: str | Path | dict[str, Any] | None) -> Dataset:
    """Parse and validate a DATASET.md file (path or already-parsed dict); None = empty."""
    if source is None:
        return Dataset()
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            raw = orjson.loads(path.read_bytes())
        except FileNotFoundError as exc:
            raise DatasetError(f"dataset file {path} not found") from exc
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"dataset file {path} is not valid JSON: {exc}") from exc
    else:
        raw = source
    if not isinstance(raw, dict):
        raise DatasetError("a dataset is a JSON object with 'tables' (and optional 'views', ...)")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise DatasetError(f"unknown top-level keys {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    ds = Dataset()
    account = raw.get("account") or {}
    if not isinstance(account, dict) or set(account) - {"host", "client_id", "client_secret"}:
        raise DatasetError("account: an object with host, client_id, client_secret")
    ds.account = {k: str(v) for k, v in account.items()}
    tables = raw.get("tables") or {}
    if not isinstance(tables, dict):
        raise DatasetError("tables: an object keyed by table name")
    seen: set[str] = set()
    for tname, tspec in tables.items():
        ds.tables.append(_load_table(tname, tspec, seen))
    views = raw.get("views") or {}
    if not isinstance(views, dict):
        raise DatasetError("views: an object keyed by view name")
    for vname, vspec in views.items():
        where = f"view {vname!r}"
        if not NAME_RE.fullmatch(vname) or vname.lower() in seen:
            raise DatasetError(f"{where}: invalid or duplicate name")
        seen.add(vname.lower())
        if not isinstance(vspec, dict) or set(vspec) - {"from", "join", "fields", "note"}:
            raise DatasetError(f"{where}: an object with from, join, fields (and note)")
        frm, join, flds = vspec.get("from"), vspec.get("join"), vspec.get("fields")
        if not isinstance(frm, list) or len(frm) < 2 or not all(isinstance(x, str) for x in frm):
            raise DatasetError(f"{where}: 'from' must list at least two table names")
        if not isinstance(join, str) or not join.strip():
            raise DatasetError(f"{where}: 'join' must be a condition string")
        if not isinstance(flds, list) or not flds:
            raise DatasetError(f"{where}: 'fields' must list 'Table.Field' names")
        ds.views.append(ViewSpec(vname, str(vspec.get("note") or ""), frm, join, flds))
    _load_files(raw, ds)
    for key, attr in (
        ("bridgeApplications", "bridge_applications"),
        ("directories", "directories"),
        ("dataImportExportTasks", "tasks"),
        ("outgoingWebhooks", "webhooks"),
    ):
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            raise DatasetError(f"{key}: a list of objects")
        setattr(ds, attr, value)
    return ds


def _load_table(tname: str, tspec: Any, seen: set[str]) -> TableSpec:
    where = f"table {tname!r}"
    if not isinstance(tname, str) or not NAME_RE.fullmatch(tname):
        raise DatasetError(f"{where}: invalid table name (letters, digits, _)")
    if tname.lower() in seen:
        raise DatasetError(f"{where}: duplicate name (names are case-insensitive)")
    seen.add(tname.lower())
    if not isinstance(tspec, dict) or set(tspec) - {"note", "fields", "rows"}:
        raise DatasetError(f"{where}: an object with fields, rows (and note)")
    fspecs = tspec.get("fields") or []
    if not isinstance(fspecs, list):
        raise DatasetError(f"{where}: fields must be a list")
    fields: list[Field] = []
    names: set[str] = set()
    for i, fs in enumerate(fspecs):
        fname = fs.get("Name") if isinstance(fs, dict) else None
        fwhere = f"{where}, field {fname!r}" if fname else f"{where}, field #{i + 1}"
        if not isinstance(fs, dict):
            raise DatasetError(f"{fwhere}: a field is an object with Name and Type")
        try:
            f = make_field(fs, i + 1)
        except (ValueError, WireError) as exc:
            raise DatasetError(f"{fwhere}: {exc}") from exc
        if f.Name.lower() in names:
            raise DatasetError(f"{fwhere}: duplicate field name")
        names.add(f.Name.lower())
        fields.append(f)
    by_name = {f.Name.lower(): f for f in fields}
    rows_in = tspec.get("rows") or []
    if not isinstance(rows_in, list):
        raise DatasetError(f"{where}: rows must be a list")
    rows: list[dict[str, Any]] = []
    attachments: list[tuple[int, str, dict[str, Any]]] = []
    pks: set[int] = set()
    for r, row in enumerate(rows_in):
        rwhere = f"{where}, row {r + 1}"
        if not isinstance(row, dict):
            raise DatasetError(f"{rwhere}: a row is an object")
        stored: dict[str, Any] = {}
        for key, value in row.items():
            if key.upper() == "PK_ID":
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise DatasetError(f"{rwhere}: PK_ID must be a positive integer")
                if value in pks:
                    raise DatasetError(f"{rwhere}: duplicate PK_ID {value}")
                pks.add(value)
                stored["PK_ID"] = value
                continue
            found = by_name.get(key.lower())
            if found is None:
                raise DatasetError(f"{rwhere}: unknown field {key!r}")
            f = found
            if f.Type == "ATTACHMENT":
                if value is not None:
                    att = _attachment(f"{rwhere}, field {f.Name!r}", value)
                    attachments.append((r, f.Name, att))
                    stored[f.column] = att["Name"]
                continue
            if f.Type in LIST_TYPES and isinstance(value, list):
                bad = [
                    v
                    for v in value
                    if not isinstance(v, int) or not 1 <= v <= len(f.ListField or [])
                ]
                if bad:
                    raise DatasetError(
                        f"{rwhere}, field {f.Name!r}: list items are 1-based ids into ListField "
                        f"(1..{len(f.ListField or [])}), got {bad}"
                    )
            try:
                stored[f.column] = to_stored(f, value)
            except WireError as exc:
                raise DatasetError(f"{rwhere}, field {f.Name!r}: {exc}") from exc
        rows.append(stored)
    return TableSpec(tname, str(tspec.get("note") or ""), fields, rows, attachments)


def _norm_path(p: str) -> str:
    parts = [x for x in p.replace("\\", "/").split("/") if x]
    return "/" + "/".join(parts)


def _load_files(raw: dict[str, Any], ds: Dataset) -> None:
    files = raw.get("files") or []
    if not isinstance(files, list):
        raise DatasetError("files: a list of {Path, Text|Base64, ContentType?}")
    seen: set[str] = set()
    for i, spec in enumerate(files):
        where = f"files[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("Path"), str):
            raise DatasetError(f"{where}: needs a 'Path' such as '/Files/logo.png'")
        unknown = set(spec) - {
            "Path",
            "Text",
            "Base64",
            "ContentType",
            "DateCreated",
            "LastModified",
        }
        if unknown:
            raise DatasetError(f"{where}: unknown keys {sorted(unknown)}")
        path = _norm_path(spec["Path"])
        if path == "/" or path.lower() in seen:
            raise DatasetError(f"{where}: empty or duplicate path {path!r}")
        seen.add(path.lower())
        try:
            created = to_date(spec.get("DateCreated") or FILE_DATE)
            modified = to_date(spec.get("LastModified") or created)
        except WireError as exc:
            raise DatasetError(f"{where}: {exc}") from exc
        ctype = (
            spec.get("ContentType") or mimetypes.guess_type(path)[0] or "application/octet-stream"
        )
        ds.files.append(FileSpec(path, _content(where, spec), ctype, created, modified))
    folders = raw.get("folders") or []
    if not isinstance(folders, list) or not all(isinstance(x, str) for x in folders):
        raise DatasetError("folders: a list of folder paths such as '/Files/Empty'")
    ds.folders = [_norm_path(x) for x in folders]


def build_store(ds: Dataset, store: Store) -> None:
    """Create the dataset's tables, rows, attachments and views in `store`."""
    from .store import Attachment

    for ts in ds.tables:
        t = store.create_table(ts.name, ts.fields, ts.note)
        # explicit PK_IDs first so generated ones never collide with a later explicit one
        explicit_max = max((r.get("PK_ID", 0) for r in ts.rows), default=0)
        next_pk = explicit_max
        pk_of_row: list[int] = []
        for row in ts.rows:
            if "PK_ID" not in row:
                next_pk += 1
                row = {"PK_ID": next_pk, **row}
            pk_of_row.append(store.insert_stored(t, row))
        for r, fname, att in ts.attachments:
            store.attachments[(t.name.lower(), fname.lower(), pk_of_row[r])] = Attachment(
                att["Name"], att["ContentType"], att["Content"], FILE_DATE, FILE_DATE
            )
    for vs in ds.views:
        try:
            store.create_view(vs.name, vs.from_tables, vs.join, vs.fields, vs.note)
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
    for d in ds.directories:
        users = d.get("users") or []
        keys: dict[str, Any] = {}
        for u in users:
            for k, v in u.items():
                keys.setdefault(k, v)
        fields = []
        for i, (k, v) in enumerate(keys.items()):
            ftype = (
                "YES/NO"
                if isinstance(v, bool)
                else "INTEGER"
                if isinstance(v, int)
                else "NUMBER"
                if isinstance(v, float)
                else "STRING"
            )
            fields.append(Field(Name=k, Type=ftype, DisplayOrder=i + 1, column=k))
        dt = store.create_table(str(d.get("Id")), fields, kind="directory")
        for u in users:
            store.insert_stored(dt, {f.column: to_stored(f, u.get(f.Name)) for f in fields})
    store.finish_load()


# ---------------------------------------------------------------- synthetic data

WIDE_FIELDS: list[dict[str, Any]] = [
    {"Name": "Name", "Type": "STRING", "Label": "Name"},
    {"Name": "Email", "Type": "STRING"},
    {"Name": "Notes", "Type": "TEXT"},
    {"Name": "Amount", "Type": "NUMBER"},
    {"Name": "Quantity", "Type": "INTEGER"},
    {"Name": "Price", "Type": "CURRENCY"},
    {"Name": "Active", "Type": "YES/NO"},
    {"Name": "Event_Date", "Type": "DATE/TIME"},
    {"Name": "Tags", "Type": "LIST-STRING", "ListField": ["Red", "Green", "Blue", "Zoë's"]},
    {"Name": "Sizes", "Type": "LIST-NUMBER", "ListField": [1, 2.5, 10]},
    {"Name": "Document", "Type": "FILE"},
    {"Name": "Row_Number", "Type": "AUTONUMBER"},
    {"Name": "Ref", "Type": "GUID"},
    {"Name": "Code", "Type": "RANDOM ID", "Format": "0U", "Length": 8},
    {"Name": "Invoice", "Type": "PREFIXED AUTONUMBER", "Prefix": "INV-", "Format": "000001"},
    {"Name": "Secret", "Type": "PASSWORD"},
    {
        "Name": "Created",
        "Type": "TIMESTAMP",
        "OnInsert": True,
        "OnUpdate": False,
        "TimeZone": "UTC",
    },
    {
        "Name": "Updated",
        "Type": "TIMESTAMP",
        "OnInsert": True,
        "OnUpdate": True,
        "TimeZone": "Pacific Standard Time",
    },
]

_FIRST = ["Ann", "Bob", "Zoë", "José", "Łukasz", "李", "Ørsted", "O'Brien", 'Sam "Slim"', "Chloé"]
_LAST = ["Smith", "García", "Müller", "O'Neil", "Nguyễn", "Søren & Co", "Ivanov", "田中", "Lee"]
_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog;",
    "naïve",
    "café",
    "résumé",
    "—",
    "ünïcödé",
    "🎉",
]
_BASE = datetime(2023, 1, 1)
# Pools make the generator a few list lookups per value (1,000,000 rows in seconds).
_DAYS = [(_BASE + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(4000)]
_TODS = [f"T{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_SENTENCES = [
    " ".join(_WORDS[(k + j) % len(_WORDS)] for j in range(3 + k % 7)) for k in range(1000)
]
_NAMES = [f"{a} {b}" for b in _LAST for a in _FIRST]
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _long_text(k: int) -> str:
    return (" ".join(_WORDS) + f" [{k}] ") * (60 * (k + 1))


_LONG = [_long_text(k)[: 1000 * (k + 1) ** 2] for k in range(4)]


def _dt(seconds: int) -> str:
    return _DAYS[seconds // 86400] + _TODS[seconds % 86400]


def _text_col(f: Field, idx: range, seed: int) -> list[Any]:
    t = f.Type
    name = f.Name
    if t == "STRING":
        if "mail" in name.lower():
            return [None if i % 29 == 7 else f"user{i}@example{(i + seed) % 7}.com" for i in idx]
        names = _NAMES
        nn = len(names)
        return [None if i % 31 == 5 else f"{names[(i + seed) % nn]} {i}" for i in idx]
    if t == "TEXT":
        sent = _SENTENCES
        return [
            None
            if i % 23 == 11
            else _LONG[(i // 997) % 4]
            if i % 997 == 500
            else f"Note {i}: {sent[(i + seed) % 1000]}"
            for i in idx
        ]
    if t == "FILE":
        return [None if i % 5 else f"/Files/doc_{i % 50}.pdf" for i in idx]
    if t == "PASSWORD":
        return [f"pw{i}" for i in idx]
    return [None for _ in idx]


def _guid(x: int) -> str:
    h = f"{x:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _column(f: Field, idx: range, start_seq: int, seed: int) -> list[Any]:
    """Stored values for field `f` at row indexes `idx` (deterministic in (index, seed))."""
    t = f.Type
    if t in ("STRING", "TEXT", "FILE", "PASSWORD", "ATTACHMENT"):
        return _text_col(f, idx, seed)
    if t == "NUMBER":
        return [
            None if i % 19 == 3 else round(((i * 7919 + seed) % 100000) / 100.0 - 250, 2)
            for i in idx
        ]
    if t == "INTEGER":
        return [None if i % 37 == 1 else (i * 37 + seed) % 10000 - 50 for i in idx]
    if t == "CURRENCY":
        return [None if i % 41 == 2 else ((i * 104729 + seed) % 10000000) / 10000 for i in idx]
    if t == "YES/NO":
        return [None if i % 43 == 4 else int((i + seed) % 3 == 0) for i in idx]
    if t == "DATE/TIME":
        return [None if i % 47 == 6 else _dt((i * 7919 + seed) % 63072000) for i in idx]
    if t == "TIMESTAMP":
        step = 30 if f.OnUpdate else 20
        return [_dt(i * step % 315000000) for i in idx]
    if t in LIST_TYPES:
        n = len(f.ListField or [])
        combos: list[Any] = [None] + [[k + 1] for k in range(n)]
        if n >= 2:
            combos.append([1, n])
        stored = [None if c is None else list_to_stored(f, c) for c in combos]
        return [stored[(i + seed) % len(stored)] for i in idx]
    if t == "AUTONUMBER":
        return list(range(start_seq + 1, start_seq + len(idx) + 1))
    if t == "PREFIXED AUTONUMBER":
        width = len(f.Format or "1")
        prefix = f.Prefix or ""
        return [
            f"{prefix}{str(k).zfill(width)}" for k in range(start_seq + 1, start_seq + len(idx) + 1)
        ]
    if t == "GUID":
        mask = (1 << 128) - 1
        return [_guid(((i + 1) * 0x9E3779B97F4A7C15BF58476D1CE4E5B9 + seed) & mask) for i in idx]
    if t == "RANDOM ID":
        alphabet = {"0": "0123456789", "U": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}.get(
            f.Format or "0U", _B36
        )
        pairs = [a + b for a in alphabet for b in alphabet]
        np_ = len(pairs)
        length = f.Length or 12
        prefix = f.Prefix or ""
        out = []
        for i in idx:
            x = ((i + 1) * 0x5851F42D4C957F2D + seed) & 0xFFFFFFFFFFFFFFFF
            s = "".join(pairs[(x >> (11 * k)) % np_] for k in range((length + 1) // 2))
            out.append(prefix + s[:length])
        return out
    return [None for _ in idx]


def generate(store: Store, table: str, n: int, seed: int = 0, batch: int = 50_000) -> Table:
    """Add `n` deterministic synthetic rows to `table`, creating a wide table when absent."""
    t = store.table(table)
    if t is None:
        fields = [make_field(spec, i + 1) for i, spec in enumerate(WIDE_FIELDS)]
        t = store.create_table(table, fields, note=f"synthetic: {n} generated rows")
    with store.lock:
        (max_pk,) = store.conn.execute(
            f'SELECT COALESCE(MAX("PK_ID"), 0) FROM {t.relation}'
        ).fetchone()
    fields = [
        f
        for f in t.fields
        if not (f.Unique and f.Type in ("STRING", "TEXT")) and f.formula is None  # computed
    ]
    columns = ["PK_ID", *(f.column for f in fields)]
    done = 0
    while done < n:
        size = min(batch, n - done)
        idx = range(max_pk + done, max_pk + done + size)
        cols: list[list[Any]] = [list(range(max_pk + done + 1, max_pk + done + size + 1))]
        for f in fields:
            start = t.seq.get(f.Name.lower(), 0)
            cols.append(_column(f, idx, start, seed))
            if f.Type in ("AUTONUMBER", "PREFIXED AUTONUMBER"):
                t.seq[f.Name.lower()] = start + size
        store.insert_many(t.name, columns, zip(*cols, strict=True))
        done += size
    store.finish_load()
    return t
