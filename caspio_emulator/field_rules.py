"""What a field definition may say: Caspio's rules for the FieldModel / UpdateFieldModel bodies
of the table design endpoints (names, properties per type, formulas), checked before anything
changes. ``build_field`` turns a checked definition into a Field; design.py applies it.

Formulas: Caspio's FieldModel has ``IsFormula`` but no property for the expression, so the
emulator takes it in an extension property, ``Formula``: one T-SQL expression over the table's
own fields, compiled by the q.* engine (sql.py) and stored as a SQLite generated column.
"""

from __future__ import annotations

import re
from typing import Any

from . import store as store_module
from .sql import QueryError, Scope, compile_expression, field_not_found
from .store import Store, Table
from .wire import (
    ALL_TYPES,
    INT_MAX,
    INT_MIN,
    LIST_TYPES,
    Field,
    Formula,
    WireError,
    make_field,
    to_date,
    to_number,
)

# SQL Server's reserved keywords (Transact-SQL), which Caspio refuses as field names
_RESERVED_WORDS = """
    ADD ALL ALTER AND ANY AS ASC AUTHORIZATION BACKUP BEGIN BETWEEN BREAK BROWSE BULK BY CASCADE
    CASE CHECK CHECKPOINT CLOSE CLUSTERED COALESCE COLLATE COLUMN COMMIT COMPUTE CONSTRAINT
    CONTAINS CONTAINSTABLE CONTINUE CONVERT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME
    CURRENT_TIMESTAMP CURRENT_USER CURSOR DATABASE DBCC DEALLOCATE DECLARE DEFAULT DELETE DENY
    DESC DISK DISTINCT DISTRIBUTED DOUBLE DROP DUMP ELSE END ERRLVL ESCAPE EXCEPT EXEC EXECUTE
    EXISTS EXIT EXTERNAL FETCH FILE FILLFACTOR FOR FOREIGN FREETEXT FREETEXTTABLE FROM FULL
    FUNCTION GOTO GRANT GROUP HAVING HOLDLOCK IDENTITY IDENTITY_INSERT IDENTITYCOL IF IN INDEX
    INNER INSERT INTERSECT INTO IS JOIN KEY KILL LEFT LIKE LINENO LOAD MERGE NATIONAL NOCHECK
    NONCLUSTERED NOT NULL NULLIF OF OFF OFFSETS ON OPEN OPENDATASOURCE OPENQUERY OPENROWSET
    OPENXML OPTION OR ORDER OUTER OVER PERCENT PIVOT PLAN PRECISION PRIMARY PRINT PROC PROCEDURE
    PUBLIC RAISERROR READ READTEXT RECONFIGURE REFERENCES REPLICATION RESTORE RESTRICT RETURN
    REVERT REVOKE RIGHT ROLLBACK ROWCOUNT ROWGUIDCOL RULE SAVE SCHEMA SECURITYAUDIT SELECT
    SEMANTICKEYPHRASETABLE SEMANTICSIMILARITYDETAILSTABLE SEMANTICSIMILARITYTABLE SESSION_USER
    SET SETUSER SHUTDOWN SOME STATISTICS SYSTEM_USER TABLE TABLESAMPLE TEXTSIZE THEN TO TOP TRAN
    TRANSACTION TRIGGER TRUNCATE TRY_CONVERT TSEQUAL UNION UNIQUE UNPIVOT UPDATE UPDATETEXT USE
    USER VALUES VARYING VIEW WAITFOR WHEN WHERE WHILE WITH WRITETEXT
"""
RESERVED = frozenset(_RESERVED_WORDS.split())
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
FORMULA = "Formula"  # emulator extension: FieldModel has IsFormula but no expression property
ATTACHMENT_PROPS = {
    "AttachmentPermittedFileTypes",
    "AttachmentMinFileSize",
    "AttachmentMaxFileSize",
    "AttachmentSmartResizer",
    "AttachmentSmartResizerForRetina",
    "AttachmentAltText",
    "AttachmentTitle",
}
BOOL_PROPS = {"Unique", "UniqueAllowNulls", "OnInsert", "OnUpdate", "IsFormula"}
BOOL_PROPS |= {"AttachmentSmartResizer", "AttachmentSmartResizerForRetina"}
INT_PROPS = {"DisplayOrder", "Length", "AttachmentMinFileSize", "AttachmentMaxFileSize"}
LIST_PROPS = {"ListField", "AttachmentPermittedFileTypes"}
STR_PROPS = {"Name", "Type", "Label", "Description", "TimeZone", "Format", "Prefix", FORMULA}
STR_PROPS |= {"AttachmentAltText", "AttachmentTitle"}
FIELD_PROPS = BOOL_PROPS | INT_PROPS | LIST_PROPS | STR_PROPS  # FieldModel + Formula
UPDATE_PROPS = FIELD_PROPS - {"IsFormula"}  # UpdateFieldModel + Formula
TYPE_SPECIFIC = {"OnInsert", "OnUpdate", "TimeZone", "Format", "Prefix", "Length", "ListField"}
TYPE_SPECIFIC |= ATTACHMENT_PROPS
FORMULA_TYPES = {"STRING", "TEXT", "NUMBER", "INTEGER", "CURRENCY", "DATE/TIME", "YES/NO"}
NO_UNIQUE = {"TEXT", "YES/NO", "FILE", "ATTACHMENT", "PASSWORD", *LIST_TYPES}
_AS_TEXT = {"STRING", "TEXT", "NUMBER", "INTEGER", "CURRENCY", "DATE/TIME", "YES/NO", "FILE"}
_AS_TEXT |= {"AUTONUMBER", "PREFIXED AUTONUMBER", "GUID", "RANDOM ID", "TIMESTAMP"}
_AS_NUMBER = {"STRING", "TEXT", "NUMBER", "INTEGER", "CURRENCY", "YES/NO", "AUTONUMBER"}
# target type -> the types whose stored data the emulator converts into it
RETYPES: dict[str, set[str]] = {
    "STRING": _AS_TEXT,
    "TEXT": _AS_TEXT,
    "NUMBER": _AS_NUMBER,
    "INTEGER": _AS_NUMBER,
    "CURRENCY": _AS_NUMBER,
    "DATE/TIME": {"STRING", "TEXT", "DATE/TIME", "TIMESTAMP"},
    "YES/NO": {"STRING", "TEXT", "NUMBER", "INTEGER", "CURRENCY"},
}


def bad(message: str, code: str = "IncorrectBodyParameter") -> QueryError:
    return QueryError(400, code, message)


def table_of(store: Store, name: str) -> Table:
    t = store.table(name)
    if t is None:
        raise QueryError(404, "ObjectNotFound", "Requested object not found")
    return t


def field_of(t: Table, name: str, action: str) -> Field:
    if name.upper() == "PK_ID":
        raise bad(f"Field 'PK_ID' cannot be {action}: it is the table's key")
    f = t.field(name)
    if f is None:
        raise field_not_found(name)
    return f


def props(body: Any, allowed: set[str]) -> dict[str, Any]:
    """A FieldModel/UpdateFieldModel body with canonical keys (matched case-insensitively, as
    ASP.NET binds them) and JSON types checked; nulls are dropped (null means "default" on
    create and "unchanged" on update)."""
    if not isinstance(body, dict):
        raise bad("The body must be one JSON object (a field definition)")
    canon = {k.lower(): k for k in allowed}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = canon.get(str(key).lower())
        if name is None:
            raise bad(f"Unknown field property '{key}'")
        if value is None:
            continue
        if name in BOOL_PROPS:
            ok = isinstance(value, bool)
        elif name in INT_PROPS:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif name in LIST_PROPS:
            ok = isinstance(value, list)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise bad(f"Field property '{name}' has the wrong JSON type: {value!r}")
        out[name] = value
    return out


def check_name(t: Table, name: Any, keep: Field | None) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise bad(
            f"Invalid field name {name!r}: letters, digits and _, starting with a letter, "
            "at most 32 characters"
        )
    if name.upper() == "PK_ID":
        raise bad("Field name 'PK_ID' is reserved for the table's key")
    if name.upper() in RESERVED:
        raise bad(f"Invalid field name '{name}': it is a reserved word of SQL Server")
    other = t.field(name)
    if other is not None and other is not keep:
        raise bad(f"Field '{other.Name}' already exists in table '{t.name}'")


def list_items(ftype: str, items: list[Any]) -> list[Any]:
    """ListField items as the OpenAPI gives them (strings) -> the stored item values."""
    if not items or len(items) > 1000:
        raise bad("ListField needs 1 to 1,000 items")
    out: list[Any] = []
    for item in items:
        try:
            if ftype == "LIST-NUMBER":
                n = to_number(item)
                out.append(int(n) if n.is_integer() and abs(n) < 1e15 else n)
            elif ftype == "LIST-DATE/TIME":
                out.append(to_date(item))
            elif isinstance(item, str) and item:
                out.append(item)
            else:
                raise WireError(f"{item!r} is not a non-empty string")
        except WireError as exc:
            raise bad(f"ListField item {item!r}: {exc}") from exc
    if len(set(map(str, out))) != len(out):
        raise bad("ListField items must be distinct")
    return out


def scope_of(t: Table, fields: list[Field]) -> Scope:
    pk = t.scope.fields["pk_id"]
    by_name = {"pk_id": pk, **{f.Name.lower(): f for f in fields}}
    return Scope(t.name, t.relation, by_name, ['"PK_ID"'])


def compile_formula(t: Table, f: Field, text: str, others: list[Field]) -> Formula:
    """Compile a formula over the other fields, cast to the field's type (SQLite's CAST
    rules; an INTEGER out of range and any failed arithmetic give null)."""
    if not store_module.GENERATED_COLUMNS:  # read now: tests simulate an old SQLite
        raise bad("Formula fields need SQLite 3.31+ (generated columns) in the emulator")
    if f.Type not in FORMULA_TYPES:
        raise bad(f"A formula field's Type is its result type: one of {sorted(FORMULA_TYPES)}")
    if not text.strip():
        raise bad("Formula: the expression is empty")
    try:
        sql, kind, refs = compile_expression(scope_of(t, others), text)
    except QueryError as exc:
        raise bad(f"Formula: {exc.message}") from exc
    if f.Type == "DATE/TIME" and kind != "date":
        raise bad("Formula: a DATE/TIME formula must be a date field expression")
    typed = {
        "STRING": f"CAST(({sql}) AS TEXT)",
        "TEXT": f"CAST(({sql}) AS TEXT)",
        "NUMBER": f"CAST(({sql}) AS REAL)",
        "CURRENCY": f"round(CAST(({sql}) AS REAL), 4)",
        "INTEGER": f"(CASE WHEN CAST(({sql}) AS INTEGER) BETWEEN {INT_MIN} AND {INT_MAX} "
        f"THEN CAST(({sql}) AS INTEGER) END)",
        "YES/NO": f"(CASE WHEN ({sql}) IS NULL THEN NULL WHEN ({sql}) THEN 1 ELSE 0 END)",
        "DATE/TIME": f"({sql})",
    }[f.Type]
    return Formula(text, typed, refs)


def build_field(
    t: Table, spec: dict[str, Any], others: list[Field], need_formula: bool = True
) -> Field:
    """Validate a field definition (FieldModel properties, Caspio's rules) into a Field."""
    ftype = str(spec["Type"]).strip().upper()
    if ftype not in ALL_TYPES:
        raise bad(f"Unknown field Type '{spec['Type']}' (one of {', '.join(sorted(ALL_TYPES))})")
    text = spec.get(FORMULA)
    if text is not None and spec.get("IsFormula") is False:
        raise bad("Formula applies to formula fields (IsFormula true) only")
    is_formula = bool(spec.get("IsFormula")) or text is not None
    if is_formula and text is None and need_formula:
        raise bad("A formula field needs its expression in 'Formula' (an emulator extension)")
    if ftype not in ("RANDOM ID", "PREFIXED AUTONUMBER"):
        for key in ("Format", "Prefix"):
            if key in spec:
                raise bad(f"{key} applies to RANDOM ID and PREFIXED AUTONUMBER fields only")
    if "Length" in spec and ftype != "RANDOM ID":
        raise bad("Length applies to RANDOM ID fields only")
    if len(spec.get("Prefix") or "") >= 50:
        raise bad("Prefix must be shorter than 50 characters")
    if ftype == "RANDOM ID" and spec.get("Format") == "0" and spec.get("Length", 12) < 8:
        raise bad("RANDOM ID Length must be 8 to 12 when Format is '0'")
    if spec.get("Unique") and (ftype in NO_UNIQUE or is_formula):
        raise bad(f"A {'formula' if is_formula else ftype} field cannot be Unique")
    if spec.get("UniqueAllowNulls") and not spec.get("Unique"):
        raise bad("UniqueAllowNulls applies to Unique fields only")
    make = {k: v for k, v in spec.items() if k not in (FORMULA, "DisplayOrder")}
    make["Type"] = ftype
    if ftype in LIST_TYPES and "ListField" in spec:
        make["ListField"] = list_items(ftype, spec["ListField"])
    try:
        f = make_field(make, 0)
    except ValueError as exc:
        raise bad(str(exc)) from exc
    if is_formula:
        f.IsFormula, f.Editable = True, False
    if text is not None:
        f.formula = compile_formula(t, f, text, others)
    return f
