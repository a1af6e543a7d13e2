"""dlt source for Caspio: every table and view, typed from /fields, incremental, via Arrow.

Quick start::

    import dlt
    from sources.caspio import caspio

    pipeline = dlt.pipeline(
        "caspio", destination=dlt.destinations.duckdb("caspio_sync.duckdb"), dataset_name="caspio"
    )
    pipeline.run(caspio())   # credentials from .dlt/secrets.toml [sources.caspio.credentials]

One object of your own source: ``caspio_table("Orders")``. What a run reads and why:
``planning.py``; how pages become Arrow tables: ``reader.py``; the read path module by module:
docs/architecture.md.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import dlt
from dlt.common.schema.typing import TSchemaContract
from dlt.extract.incremental import Incremental
from dlt.extract.resource import DltResource

from .auth import TokenCache, reset_token_providers
from .budget import CallBudget, CallBudgetExceeded
from .catalog import Catalog
from .change_journal import DEFAULT_JOURNAL, ChangeJournal, journal_event, journal_path
from .client import CaspioClient, CaspioResponse
from .configuration import (
    CLIENT_SETTINGS,
    SOURCE_NAME,
    CaspioSourceConfiguration,
    client_from_settings,
    resolve_source_configuration,
)
from .credentials import CaspioCredentials
from .deletes import DELETED_AT_COLUMN, KeyScan, missing_keys, scan_cost, scan_keys
from .design import DesignChanges, design_changes
from .destination import LoadTarget, probe_destination
from .duckdb_compat import install as _install_duckdb_compat
from .errors import (
    CaspioApiError,
    CaspioAuthError,
    CaspioConfigError,
    CaspioDesignChangeError,
    CaspioError,
    CaspioNotJsonError,
    CaspioObjectNotFoundError,
    CaspioPermissionError,
    CaspioQueryRejectedError,
    CaspioQuotaExceededError,
    CaspioTokenCacheError,
    CaspioUnavailableError,
    exception_chain,
)
from .extras import extra_resources
from .journal_deletes import applied_message_ids
from .ledger import (
    LEDGER_FILE,
    LEDGER_TABLE,
    CallLedger,
    LedgerEntry,
    append_entries,
    attach_call_ledger,
    call_ledger_of,
    flush_call_ledgers,
    ledger_command,
    ledger_path,
    ledger_source,
    read_entries,
    set_ledger_command,
)
from .lineage import CaspioAccountMismatchError, DestinationFacts, check_account, stale_reason
from .options import DeleteMode, TableOptions, TableOptionsMap, validate_table_options
from .planning import ObjectPlan, plan_object, resolve_kind, select_objects
from .resources import ObjectSync, object_resource
from .settings import (
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_MAX_WORKERS,
    DEFAULT_PAGE_SIZE,
    PK_FIELD,
    TABLES,
    VIEWS,
    ObjectKind,
)
from .state_keys import check_distinct, default_naming, object_state, resource_name
from .stats import CaspioStats
from .view_pager import ViewReadPrice, price_view_read
from .windows import configured_window

_install_duckdb_compat()  # before any pipeline.dataset() read of a DuckDB 2 file


@dlt.source(name=SOURCE_NAME, max_table_nesting=0, spec=CaspioSourceConfiguration)
def caspio(
    credentials: CaspioCredentials = dlt.secrets.value,
    tables: list[str] | None = None,
    include_views: bool = True,
    table_options: dict[str, dict[str, Any]] | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_workers: int = DEFAULT_MAX_WORKERS,
    token_cache_dir: str | None = None,
    token_cache: bool = True,
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS,
    requests_per_second: float | None = None,
    schema_contract: TSchemaContract | None = None,
    metadata: bool | list[str] = False,
    files: bool = False,
    attachments: bool | list[str] = False,
    download_to: str | None = None,
    call_ledger_path: str | None = None,
    webhook_journal: str = DEFAULT_JOURNAL,
    client: CaspioClient | None = None,
) -> Iterable[DltResource]:
    """Caspio tables and views as dlt resources, one per object.

    Every argument but ``client`` is also read from ``[sources.caspio]`` in
    ``.dlt/config.toml`` or ``SOURCES__CASPIO__<NAME>`` (``CaspioSourceConfiguration``), with the
    same meaning in ``caspio-sync``'s commands.

    Args:
        credentials: client id/secret and subdomain or integration URL
            (``[sources.caspio.credentials]``).
        tables: names or glob patterns (``"Order*"``) of tables/views; ``None`` = all of them.
            Names match case-insensitively. An unknown name is an error listing what exists.
        include_views: with ``tables=None`` or globs, include views too.
        table_options: per name/pattern overrides: ``cursor_field`` (or ``false``),
            ``primary_key``, ``write_disposition`` (merge/replace/append), ``fields``, ``lag``
            (seconds re-read before the mark), ``where`` (extra filter), ``initial_value``/
            ``end_value`` (a window on the cursor: ``windows.py``). See ``options.py``.
        page_size: records per call (5-1000; Caspio's maximum, 1000, costs the fewest calls).
        max_workers: the most calls in flight at once, across all tables (first pages,
            page ranges, ``/fields``): the cap of an adaptive budget that starts at 4, grows
            while no 429 comes back and latency does not rise, and halves on a 429 (also
            sizes the page threads and the HTTP pool).
        token_cache_dir: where the 0600 token file lives (default: the user's cache dir).
        token_cache: ``False`` keeps the token in memory only (one token call per run).
        max_retry_seconds: how long one request may keep retrying before the run fails.
        requests_per_second: pace calls for a throttled account (e.g. 2000/300).
        schema_contract: dlt schema contract for every table, e.g. ``{"columns": "freeze"}``
            to fail a run when a field is added in Caspio instead of adding the column.
        metadata: ``True`` (or a list of names) adds account metadata resources: applications,
            DataPages, directories and users (no secrets), import/export tasks, webhooks.
        files: adds the Files area (folders and file metadata, incremental on LastModified).
        attachments: ``True`` (or table names) adds the metadata of ATTACHMENT fields.
        download_to: a folder or bucket URL that file/attachment content is copied to (only
            new or changed content is fetched).
        call_ledger_path: the file every call is recorded in (``ledger.py``); default:
            ``caspio_call_ledger.jsonl`` in the folder of the pipeline active when
            ``caspio()`` is called.
        webhook_journal: the journal ``caspio-sync listen`` writes webhook events to; each
            table's run applies its journaled deletes (``journal_deletes.py``). A relative
            path means the directory ``caspio()`` is called in.
        client: a ``CaspioClient`` to use (then ``client.stats`` shows what the run cost);
            built from ``credentials`` and the client settings when omitted.
    """
    if client is None:
        client = CaspioClient(
            credentials,
            max_workers=max_workers,
            token_cache=token_cache,
            token_cache_dir=token_cache_dir,
            max_retry_seconds=max_retry_seconds,
            requests_per_second=requests_per_second,
        )
    elif not isinstance(client, CaspioClient):
        raise CaspioConfigError(f"client must be a CaspioClient, got {type(client).__name__}")
    attach_call_ledger(client, call_ledger_path)
    parsed_options = validate_table_options(table_options)
    catalog = Catalog(client, include_views=include_views)
    selected = select_objects(catalog, tables)
    naming = _naming()
    check_distinct([name for name, _ in selected], naming)
    target = LoadTarget([name for name, _ in selected])
    journal = str(journal_path(webhook_journal))
    for name, kind in selected:
        sync = ObjectSync(
            client,
            name,
            kind,
            parsed_options.for_object(name),
            page_size,
            catalog,
            target,
            resource_name(name, naming),
            journal=journal,
        )
        yield object_resource(sync, schema_contract)
    yield from extra_resources(client, metadata, files, attachments, download_to, page_size)


def _naming() -> Any:
    """The running source's naming convention (dlt's default outside a source)."""
    try:
        return dlt.current.source_schema().naming
    except Exception:
        return default_naming()


def caspio_table(
    name: str,
    credentials: CaspioCredentials | None = None,
    options: Mapping[str, Any] | None = None,
    page_size: int | None = None,
    schema_contract: TSchemaContract | None = None,
    client: CaspioClient | None = None,
    incremental: Incremental[Any] | None = None,
) -> DltResource:
    """One Caspio table or view as a dlt resource, for a source of your own (as dlt's
    ``sql_table`` is to ``sql_database``): the same read, state, design-change and account
    checks as ``caspio()``. ``options`` are this object's ``table_options`` entry; what is not
    given comes from ``[sources.caspio]`` as for ``caspio()``. ``incremental`` (a
    ``dlt.sources.incremental`` on a date/time or integer field) is read as a window pushed
    down to Caspio (``windows.py``), as ``resource.apply_hints(incremental=...)`` is."""
    settings = resolve_source_configuration(
        credentials=client.credentials if client else credentials,
        page_size=page_size,
        schema_contract=schema_contract,
    )
    client = client or client_from_settings(settings)
    attach_call_ledger(client, settings.call_ledger_path)
    table_options = validate_table_options(settings.table_options)
    if options is not None:
        table_options = validate_table_options({**table_options, name: dict(options)})
    sync = ObjectSync(
        client,
        name,
        None,
        table_options.for_object(name),
        settings.page_size,
        Catalog(client, include_views=True),
        LoadTarget([name]),
        journal=str(journal_path(settings.webhook_journal)),
    )
    resource = object_resource(sync, settings.schema_contract)
    if incremental is not None:
        resource.apply_hints(incremental=incremental)
    return resource


__all__ = [
    "configured_window",
    "object_state",
    "resource_name",
    "LEDGER_FILE",
    "LEDGER_TABLE",
    "CallLedger",
    "LedgerEntry",
    "append_entries",
    "attach_call_ledger",
    "call_ledger_of",
    "flush_call_ledgers",
    "ledger_command",
    "ledger_path",
    "ledger_source",
    "read_entries",
    "set_ledger_command",
    "ChangeJournal",
    "DEFAULT_JOURNAL",
    "applied_message_ids",
    "journal_event",
    "journal_path",
    "caspio_table",
    "client_from_settings",
    "caspio",
    "exception_chain",
    "CallBudget",
    "CallBudgetExceeded",
    "DELETED_AT_COLUMN",
    "KeyScan",
    "missing_keys",
    "scan_cost",
    "scan_keys",
    "PK_FIELD",
    "select_objects",
    "CaspioSourceConfiguration",
    "resolve_source_configuration",
    "CLIENT_SETTINGS",
    "SOURCE_NAME",
    "Catalog",
    "plan_object",
    "resolve_kind",
    "ObjectKind",
    "TABLES",
    "VIEWS",
    "ViewReadPrice",
    "price_view_read",
    "ObjectPlan",
    "design_changes",
    "DesignChanges",
    "DestinationFacts",
    "probe_destination",
    "check_account",
    "stale_reason",
    "TableOptions",
    "TableOptionsMap",
    "DeleteMode",
    "validate_table_options",
    "CaspioAccountMismatchError",
    "CaspioDesignChangeError",
    "CaspioClient",
    "CaspioCredentials",
    "CaspioResponse",
    "CaspioStats",
    "TokenCache",
    "reset_token_providers",
    "CaspioError",
    "CaspioConfigError",
    "CaspioApiError",
    "CaspioAuthError",
    "CaspioPermissionError",
    "CaspioQuotaExceededError",
    "CaspioObjectNotFoundError",
    "CaspioQueryRejectedError",
    "CaspioNotJsonError",
    "CaspioUnavailableError",
    "CaspioTokenCacheError",
]
