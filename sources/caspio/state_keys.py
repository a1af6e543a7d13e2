"""Resource names and state keys: one per Caspio object, whatever spelling selected it.

A Caspio object's resource is named like its destination table (dlt's naming convention applied
to the Caspio name: ``Order_Items`` -> ``order_items``), so ``with_resources("orders")`` works
and ``tables=["orders"]`` after ``["Orders"]`` (Caspio names are case-insensitive) keeps the
same state. State written under an older key (the Caspio spelling, before resources were named
this way) is moved to the new key once, on the object's next run, without a reload.
"""

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from dlt.common.normalizers.naming import NamingConvention
from dlt.common.normalizers.naming.snake_case import NamingConvention as SnakeCaseNaming

from .errors import CaspioConfigError


def default_naming() -> NamingConvention:
    """dlt's default naming (snake_case), for names outside a pipeline's schema."""
    return SnakeCaseNaming()


def resource_name(name: str, naming: NamingConvention | None = None) -> str:
    """The resource (and state key) of the Caspio object ``name``."""
    return (naming or default_naming()).normalize_table_identifier(name)


def check_distinct(names: Iterable[str], naming: NamingConvention | None = None) -> None:
    """Stop when two Caspio objects would share one resource, table and state."""
    seen: dict[str, str] = {}
    for name in names:
        key = resource_name(name, naming)
        if key in seen and seen[key].lower() != name.lower():
            raise CaspioConfigError(
                f"Caspio objects {seen[key]} and {name} both load into table {key}: select one "
                f"of them (tables = [...]), or read the other in a source of its own with "
                f"another dataset_name"
            )
        seen.setdefault(key, name)


def object_state(
    states: Mapping[str, Any], name: str, naming: NamingConvention | None = None
) -> Mapping[str, Any]:
    """An object's state from the source's ``resources`` state: under its resource name, or
    (not migrated yet) under any older spelling of it."""
    key = resource_name(name, naming)
    found = states.get(key)
    if isinstance(found, Mapping) and found:
        return found
    for old_key, state in states.items():
        if isinstance(state, Mapping) and resource_name(old_key, naming) == key:
            return state
    return {}


def migrate_state(resources: MutableMapping[str, Any], key: str, naming: NamingConvention) -> None:
    """Move state kept under another spelling of ``key`` to ``key`` (what is there wins)."""
    for old_key in [k for k in resources if k != key]:
        old = resources[old_key]
        if isinstance(old, dict) and resource_name(old_key, naming) == key:
            del resources[old_key]
            target = resources.setdefault(key, {})
            for field, value in old.items():
                target.setdefault(field, value)
