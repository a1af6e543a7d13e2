"""Building ``q.where`` clauses that no name or value can change the meaning of.

Caspio takes a raw SQL Server WHERE clause in the query string. Everything the connector puts
there goes through this module: identifiers are validated against Caspio's naming rule (letters,
digits and ``_``), values are rendered as literals (integers checked, strings single-quoted with
``'`` doubled), and a user-supplied fragment must be self-contained (balanced parentheses and
quotes) so wrapping it in parentheses keeps it from escaping into the connector's own conditions.
"""

import datetime as dt
import re

from .errors import CaspioConfigError

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")

# SQL Server's reserved keywords: written unquoted into a WHERE clause, a "field" named like
# one (NULL, SELECT, OR...) would be read as SQL, not as a column.
_RESERVED = frozenset(
    """ADD ALL ALTER AND ANY AS ASC AUTHORIZATION BACKUP BEGIN BETWEEN BREAK BROWSE BULK BY
    CASCADE CASE CHECK CHECKPOINT CLOSE CLUSTERED COALESCE COLLATE COLUMN COMMIT COMPUTE
    CONSTRAINT CONTAINS CONTAINSTABLE CONTINUE CONVERT CREATE CROSS CURRENT CURRENT_DATE
    CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATABASE DBCC DEALLOCATE DECLARE DEFAULT
    DELETE DENY DESC DISK DISTINCT DISTRIBUTED DOUBLE DROP DUMP ELSE END ERRLVL ESCAPE EXCEPT
    EXEC EXECUTE EXISTS EXIT EXTERNAL FETCH FILE FILLFACTOR FOR FOREIGN FREETEXT FREETEXTTABLE
    FROM FULL FUNCTION GOTO GRANT GROUP HAVING HOLDLOCK IDENTITY IDENTITY_INSERT IDENTITYCOL IF
    IN INDEX INNER INSERT INTERSECT INTO IS JOIN KEY KILL LEFT LIKE LINENO LOAD MERGE NATIONAL
    NOCHECK NONCLUSTERED NOT NULL NULLIF OF OFF OFFSETS ON OPEN OPENDATASOURCE OPENQUERY
    OPENROWSET OPENXML OPTION OR ORDER OUTER OVER PERCENT PIVOT PLAN PRECISION PRIMARY PRINT
    PROC PROCEDURE PUBLIC RAISERROR READ READTEXT RECONFIGURE REFERENCES REPLICATION RESTORE
    RESTRICT RETURN REVERT REVOKE RIGHT ROLLBACK ROWCOUNT ROWGUIDCOL RULE SAVE SCHEMA
    SECURITYAUDIT SELECT SEMANTICKEYPHRASETABLE SEMANTICSIMILARITYDETAILSTABLE
    SEMANTICSIMILARITYTABLE SESSION_USER SET SETUSER SHUTDOWN SOME STATISTICS SYSTEM_USER TABLE
    TABLESAMPLE TEXTSIZE THEN TO TOP TRAN TRANSACTION TRIGGER TRUNCATE TRY_CONVERT TSEQUAL UNION
    UNIQUE UNPIVOT UPDATE UPDATETEXT USE USER VALUES VARYING VIEW WAITFOR WHEN WHERE WHILE WITH
    WITHIN WRITETEXT""".split()  # noqa: SIM905 - a keyword table reads better as text
) | {
    "GO",  # not reserved, but the batch separator: T-SQL parsers read "GO > 1" as a command
    "TRUE",  # not reserved in SQL Server, but read as boolean literals by other SQL front ends
    "FALSE",
}


def identifier(name: str) -> str:
    """Returns ``name`` if it is a valid Caspio field name, else raises."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name) or name.upper() in _RESERVED:
        raise CaspioConfigError(
            f"Invalid Caspio field name {name!r}: names are letters, digits and '_', start "
            "with a letter and are not SQL Server keywords; fix the name in table_options"
        )
    return name


def int_literal(value: int) -> str:
    """Renders an integer (PK bounds); refuses anything that is not a real int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int for a numeric literal, got {type(value).__name__}")
    return str(value)


def string_literal(value: str) -> str:
    """Renders a T-SQL string literal: single quotes, embedded quotes doubled.

    NUL and other C0 control characters are refused: no Caspio value needs them and some SQL
    front ends truncate at NUL, which would break the quoting.
    """
    if not isinstance(value, str):
        raise TypeError(f"expected str for a string literal, got {type(value).__name__}")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValueError("string literal contains a control character")
    return "'" + value.replace("'", "''") + "'"


def datetime_literal(value: dt.datetime) -> str:
    """Renders a naive date/time as Caspio writes it: ``'2024-01-31T10:00:00'``."""
    if value.tzinfo is not None:
        raise ValueError("datetime literals are written in the field's own zone (naive)")
    return "'" + value.replace(microsecond=0).isoformat(timespec="seconds") + "'"


def check_fragment(fragment: str) -> str:
    """Validates a user-written WHERE fragment so it cannot break out of its parentheses.

    The fragment stays SQL the user wrote in their own config; we only check that quotes and
    parentheses balance (outside string literals and ``"quoted"`` / ``[bracketed]``
    identifiers, where T-SQL does not read a ``'`` or ``)`` as syntax) and that it has no
    statement separators or comments, so ``(<fragment>) AND PK_ID > 5`` always keeps the
    connector's conditions.
    """
    depth = 0
    # inside a quoted token: its closing character (' string, " or ] identifier), else None
    closer: str | None = None
    i = 0
    while i < len(fragment):
        c = fragment[i]
        if closer is not None:
            if c == closer:
                if i + 1 < len(fragment) and fragment[i + 1] == closer:
                    i += 1  # doubled: an escaped quote / bracket inside the token
                else:
                    closer = None
        elif c == "'":
            closer = "'"
        elif c == '"':
            closer = '"'  # T-SQL quoted identifier: a ' or ) inside it is not SQL syntax
        elif c == "[":
            closer = "]"  # T-SQL bracketed identifier
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                break
        elif c == ";" or fragment.startswith("--", i) or fragment.startswith("/*", i):
            depth = -1
            break
        i += 1
    if closer is not None or depth != 0:
        raise CaspioConfigError(
            f"Invalid filter {fragment!r}: quotes/parentheses must balance and ';' or comments "
            "are not allowed; fix the `where` in table_options"
        )
    return fragment


def and_(*clauses: str | None) -> str | None:
    """ANDs the non-empty clauses, each parenthesised; ``None`` when there is none."""
    parts = [c for c in clauses if c]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({c})" for c in parts)
