"""Resources are named like their tables (``orders``, ``order_items``), and an object keeps one
state whatever spelling selected it; state under the old Caspio-cased key is moved, not lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from sources.caspio import CaspioConfigError, caspio, exception_chain
from tests.helpers import PEOPLE_FIELDS, client_for, credentials_for, read_rows


def pipeline_for(tmp_path: Path) -> Any:
    return dlt.pipeline(
        "keys",
        destination=dlt.destinations.duckdb(str(tmp_path / "keys.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
        dataset_name="caspio",
    )


def source(emu: Any, **kwargs: Any) -> Any:
    return caspio(credentials=credentials_for(emu), client=client_for(emu), **kwargs)


def resource_states(pipeline: Any) -> dict[str, Any]:
    return dict(pipeline.state["sources"]["caspio"]["resources"])


def record_calls(emu: Any) -> int:
    return sum(1 for e in emu.log if e.path.endswith("/records"))


def test_resources_are_named_like_their_tables(caspio_emulator: Any, tmp_path: Path) -> None:
    emu = caspio_emulator
    assert sorted(source(emu, include_views=False).resources) == [
        "customers",
        "order_items",
        "orders",
        "products",
    ]
    pipeline = pipeline_for(tmp_path)
    pipeline.run(source(emu).with_resources("orders"))
    assert len(read_rows(pipeline, "orders")) == len(emu.table_rows("Orders"))
    assert list(resource_states(pipeline)) == ["orders"]


def test_any_spelling_of_a_name_keeps_the_same_state(caspio_emulator: Any, tmp_path: Path) -> None:
    emu = caspio_emulator
    pipeline = pipeline_for(tmp_path)
    pipeline.run(source(emu, tables=["Orders"]))
    emu.reset_log()
    client = client_for(emu)
    pipeline.run(caspio(credentials=credentials_for(emu), client=client, tables=["orders"]))
    assert record_calls(emu) == 1 and client.stats.rows == 0, "incremental, not a reload"
    assert list(resource_states(pipeline)) == ["orders"]


def test_state_under_the_old_caspio_cased_key_is_moved_once(
    caspio_emulator: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator
    pipeline = pipeline_for(tmp_path)
    pipeline.run(source(emu, tables=["Orders"]))
    with pipeline.managed_state() as state:  # as runs before the rename left it
        resources = state["sources"]["caspio"]["resources"]
        resources["Orders"] = resources.pop("orders")
    mark = resource_states(pipeline)["Orders"]["cursor"]
    emu.reset_log()
    pipeline.run(source(emu, tables=["Orders"]))
    assert record_calls(emu) == 1, "the old mark was used: no reload"
    states = resource_states(pipeline)
    assert list(states) == ["orders"] and states["orders"]["cursor"] == mark


def test_two_caspio_names_for_one_table_stop_in_one_line(
    caspio_emulator_factory: Any,
) -> None:
    table = {"fields": PEOPLE_FIELDS, "rows": []}
    emu = caspio_emulator_factory(dataset={"tables": {"OrderItems": table, "Order_Items": table}})
    with pytest.raises(Exception) as raised:
        list(source(emu).resources)
    error = next(e for e in exception_chain(raised.value) if isinstance(e, CaspioConfigError))
    assert "OrderItems and Order_Items both load into table order_items" in str(error)
