"""The source's settings as one dlt configuration: what ``caspio()`` reads from
``[sources.caspio]`` / ``SOURCES__CASPIO__*``, and what every other entry point reads too.

``caspio()`` is injected from ``CaspioSourceConfiguration`` (its ``spec``), and
``resolve_source_configuration`` resolves the same class under the same config sections, so
``caspio-sync run``, ``plan``, ``check`` and ``reconcile`` give each setting the meaning the
source gives it. Explicit values (command-line flags) win over config.
"""

import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dlt.common.configuration import configspec, known_sections
from dlt.common.configuration.container import Container
from dlt.common.configuration.inject import inject_section
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration, ConfigSectionContext
from dlt.common.pipeline import PipelineContext
from dlt.common.schema.typing import TSchemaContract

from .change_journal import DEFAULT_JOURNAL
from .client import CaspioClient
from .credentials import CaspioCredentials
from .errors import CaspioConfigError
from .ledger import attach_call_ledger
from .settings import (
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_MAX_WORKERS,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MIN_PAGE_SIZE,
)

SOURCE_NAME = "caspio"
SOURCE_SECTIONS = (known_sections.SOURCES, SOURCE_NAME, SOURCE_NAME)
"""Where dlt looks up the source's arguments: ``sources.caspio.caspio.<key>``, then
``sources.caspio.<key>`` (and each of them under ``<pipeline name>.`` first)."""


@configspec
class CaspioSourceConfiguration(BaseConfiguration):
    """Every setting of the Caspio source (see ``caspio()`` for what each one does)."""

    credentials: CaspioCredentials = None  # type: ignore[assignment]  # dlt's required field
    tables: list[str] | None = None
    include_views: bool = True
    table_options: dict[str, dict[str, Any]] | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    max_workers: int = DEFAULT_MAX_WORKERS
    token_cache_dir: str | None = None
    token_cache: bool = True
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    requests_per_second: float | None = None
    schema_contract: TSchemaContract | None = None
    metadata: Any = False
    """``True``, or a list of metadata resource names (dlt's specs take no ``bool | list``)."""
    files: bool = False
    attachments: Any = False
    """``True``, or a list of table names."""
    download_to: str | None = None
    webhook_journal: str = DEFAULT_JOURNAL
    """Where ``caspio-sync listen`` journals webhook events and ``run`` reads them (a relative
    path means the current directory)."""
    call_ledger_path: str | None = None
    """The call ledger's file (default: ``caspio_call_ledger.jsonl`` in the pipeline's folder)."""
    call_ledger_in_destination: bool = True
    """``run`` also merges the ledger into ``_caspio_call_ledger`` of the dataset."""
    quota_period_start_day: int = 1
    """The day of the month the account's call quota starts again (1-31; the last day of a
    shorter month)."""
    quota_time_zone: str = "UTC"
    """The IANA time zone in which a quota period starts at midnight."""
    quota_calls_per_month: int | None = None
    overage_price_per_call: float | None = None
    monthly_call_budget: int | None = None
    """``run`` stops (exit 3) before a call past this many calls in the quota period."""

    def on_resolved(self) -> None:
        """Every value checked once, naming where it is set, before any API call."""
        where = "(set in [sources.caspio] of .dlt/config.toml, SOURCES__CASPIO__{key}, or a flag)"
        if isinstance(self.tables, str):
            self.tables = [t.strip() for t in self.tables.split(",") if t.strip()]
        if not MIN_PAGE_SIZE <= self.page_size <= MAX_PAGE_SIZE:
            raise CaspioConfigError(
                f"page_size must be between {MIN_PAGE_SIZE} and {MAX_PAGE_SIZE}, got "
                f"{self.page_size} {where.format(key='PAGE_SIZE')}"
            )
        if self.max_workers < 1:
            raise CaspioConfigError(
                f"max_workers must be at least 1, got {self.max_workers} "
                f"{where.format(key='MAX_WORKERS')}"
            )
        self.metadata = _names_or_flag("metadata", self.metadata, where)
        self.attachments = _names_or_flag("attachments", self.attachments, where)
        _check_quota_settings(self, where)


def _check_quota_settings(settings: "CaspioSourceConfiguration", where: str) -> None:
    """The call ledger's and quota's settings, each named with its fix."""
    if not 1 <= settings.quota_period_start_day <= 31:
        raise CaspioConfigError(
            f"quota_period_start_day must be a day of the month (1-31), got "
            f"{settings.quota_period_start_day} {where.format(key='QUOTA_PERIOD_START_DAY')}"
        )
    try:
        ZoneInfo(settings.quota_time_zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise CaspioConfigError(
            f"quota_time_zone must be an IANA time zone such as UTC or America/New_York, got "
            f"{settings.quota_time_zone!r} {where.format(key='QUOTA_TIME_ZONE')}"
        ) from None
    for key in ("quota_calls_per_month", "overage_price_per_call", "monthly_call_budget"):
        value = getattr(settings, key)
        if value is not None and value < 0:
            raise CaspioConfigError(
                f"{key} must be 0 or more, got {value} {where.format(key=key.upper())}"
            )


def _names_or_flag(key: str, value: Any, where: str) -> bool | list[str]:
    """``true``/``false`` or a list of names, also from an env var's JSON or comma text."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false", ""):
            return text.lower() == "true"
        try:
            value = json.loads(text)
        except ValueError:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, bool) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return value
    raise CaspioConfigError(
        f"{key} must be true, false or a list of names, got {value!r} "
        f"{where.format(key=key.upper())}"
    )


CLIENT_SETTINGS = (
    "max_workers",
    "token_cache",
    "token_cache_dir",
    "max_retry_seconds",
    "requests_per_second",
)
"""The settings that shape the HTTP client rather than what is read."""


def client_from_settings(settings: CaspioSourceConfiguration) -> CaspioClient:
    """The client ``caspio()`` builds from these settings."""
    client = CaspioClient(
        settings.credentials, **{key: getattr(settings, key) for key in CLIENT_SETTINGS}
    )
    attach_call_ledger(client, settings.call_ledger_path)
    return client


def resolve_source_configuration(
    pipeline_name: str | None = None, **explicit: Any
) -> CaspioSourceConfiguration:
    """The source's settings as ``caspio()`` would resolve them inside ``pipeline_name``'s
    pipeline; ``explicit`` values (``None`` = not given) win over config and env."""
    given = {key: value for key, value in explicit.items() if value is not None}
    if pipeline_name is None:
        proxy = Container()[PipelineContext]
        pipeline_name = proxy.pipeline().pipeline_name if proxy.is_active() else None
    context = ConfigSectionContext(
        pipeline_name=pipeline_name, sections=SOURCE_SECTIONS, source_state_key=SOURCE_NAME
    )
    with inject_section(context):
        return resolve_configuration(
            CaspioSourceConfiguration(), sections=SOURCE_SECTIONS, explicit_value=given
        )
