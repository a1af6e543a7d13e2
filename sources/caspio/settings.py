"""Constants of the Caspio REST API and the connector's defaults, in one place.

Every number here is either a documented API limit (see the project's Caspio API facts) or a
default a user can override through the source's arguments / config.
"""

from typing import Literal

API_ROOT = "/integrations/rest/v3"
"""REST v3 root under the integration URL host (``/rest/v3`` does not exist on Caspio)."""
TOKEN_PATH = "/oauth/token"

MAX_PAGE_SIZE = 1000
"""No Caspio call returns more than 1,000 records."""
MIN_PAGE_SIZE = 5
"""``q.pageSize`` below 5 is answered ``400 IncorrectQueryParameter``."""
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE
MAX_URI_LENGTH = 2047

PK_FIELD = "PK_ID"
"""Implicit key of every table (integer) and view (comma-joined string); absent from /fields."""

LOOPBACK_HOSTS: frozenset[str] = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
"""Hosts allowed over plain http (the local emulator); everything else must be https."""

# HTTP behaviour
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 8
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_MAX_RETRY_SECONDS = 300.0
"""A sustained outage fails the run after at most this long per request (configurable)."""
RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
DEFAULT_MAX_WORKERS = 8
"""The cap of calls in flight per client, across tables (``in_flight.py`` starts at 4 and
grows toward it while no 429 comes back and latency does not rise)."""

# Tokens
TOKEN_REFRESH_AHEAD_SECONDS = 300.0
"""Renew a token this long before it expires (capped at 10% of its lifetime)."""
TOKEN_CACHE_APP_DIR = "caspio-dlt"

# Caspio field types, grouped by how they load
TEXT_TYPES: frozenset[str] = frozenset(
    {
        "STRING",
        "TEXT",
        "FILE",
        "GUID",
        "RANDOM ID",
        "PREFIXED AUTONUMBER",
        "ATTACHMENT",
    }
)
INTEGER_TYPES: frozenset[str] = frozenset({"INTEGER", "AUTONUMBER"})
FLOAT_TYPES: frozenset[str] = frozenset({"NUMBER"})
DECIMAL_TYPES: frozenset[str] = frozenset({"CURRENCY"})
BOOL_TYPES: frozenset[str] = frozenset({"YES/NO"})
NAIVE_DATETIME_TYPES: frozenset[str] = frozenset({"DATE/TIME"})
ZONED_DATETIME_TYPES: frozenset[str] = frozenset({"TIMESTAMP"})
LIST_TYPES: frozenset[str] = frozenset({"LIST-STRING", "LIST-NUMBER", "LIST-DATE/TIME"})
SKIPPED_TYPES: frozenset[str] = frozenset({"PASSWORD"})
"""Never returned by the API; naming it in q.select is an error, so it is left out entirely."""
CURSOR_TYPES: frozenset[str] = NAIVE_DATETIME_TYPES | ZONED_DATETIME_TYPES

CURRENCY_PRECISION = 19
CURRENCY_SCALE = 4

ObjectKind = Literal["tables", "views"]
"""A table or a view: the path segment of its API calls."""
TABLES: ObjectKind = "tables"
VIEWS: ObjectKind = "views"


def object_kind(value: object) -> ObjectKind | None:
    """A kind read back from state (``None`` when absent or not one)."""
    return TABLES if value == TABLES else VIEWS if value == VIEWS else None
