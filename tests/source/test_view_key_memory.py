"""A view whose ``_PK_ID_`` keys Caspio refuses costs the refused call once, not every run: the
refusal is kept in the view's resource state, read by the next run and by ``plan``, and
forgotten when the view's ``/fields`` answer changes or ``KEYS_RETRY_AFTER`` has passed."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt

from caspio_emulator import view_keys as emulator_keys
from pipelines.plan import plan_sync, resource_states
from pipelines.setup import build_pipeline, source_settings
from sources.caspio import CaspioClient, TableOptions, plan_object
from sources.caspio.view_pager import (
    KEYS_REFUSED_STATE,
    KEYS_RETRY_AFTER,
    keys_remembered_refused,
    remember_keys,
)
from tests.helpers import expected_rows

from .conftest import record_calls, reset_log
from .test_view_ranges import PAGE, TYPES, VIEW, dataset, loaded, sync

MakeClient = Callable[..., CaspioClient]
ORDERS = 300
NAME = "remembered"


def refuse_keys(emu: Any) -> None:
    view = emu.store.view(VIEW)
    assert view is not None
    view.scope.hidden = {}  # an older view: Caspio answers 404 FieldNotFound for its keys


def run_and_check(emu: Any, client: CaspioClient, tmp_path: Path) -> list[Any]:
    """One run of the view: it loads exactly the view; returns the run's records calls."""
    reset_log(emu)
    _, got = loaded(sync(client, tmp_path, NAME))
    assert got == expected_rows(emu, VIEW, TYPES)
    return record_calls(emu, VIEW)


def keyed(calls: list[Any]) -> list[Any]:
    return [e for e in calls if "_PK_ID_" in e.query]


def view_state(tmp_path: Path) -> dict[str, Any]:
    states = resource_states(pipeline(tmp_path))
    return dict(states.get("cust_orders") or {})


def pipeline(tmp_path: Path) -> Any:
    destination = dlt.destinations.duckdb(credentials=str(tmp_path / f"{NAME}.duckdb"))
    return build_pipeline(destination, "caspio", NAME, pipelines_dir=str(tmp_path / "pipelines"))


def test_the_refused_call_is_spent_once_and_plan_prices_without_it(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=dataset(orders=ORDERS))
    refuse_keys(emu)
    client = make_client(emu)
    pages = math.ceil(ORDERS / PAGE)

    first = run_and_check(emu, client, tmp_path)
    assert [e.status for e in keyed(first)] == [404], "the first run asks for the keys once"
    assert len(first) == 1 + pages
    assert KEYS_REFUSED_STATE in view_state(tmp_path)

    settings = source_settings(NAME, [VIEW], client.credentials, {"page_size": PAGE})
    reset_log(emu)
    plan = plan_sync(pipeline(tmp_path), client, settings)
    assert not keyed(record_calls(emu, VIEW)), "plan asks no more than the run"
    (priced,) = plan.tables
    assert (priced.rows, priced.page_calls) == (ORDERS, pages)

    second = run_and_check(emu, client, tmp_path)
    assert not keyed(second), "the refusal was remembered"
    assert len(second) == pages == priced.page_calls
    assert all(e.status == 200 for e in second)


def test_a_design_change_of_the_view_tries_its_keys_again(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=dataset(orders=ORDERS))
    refuse_keys(emu)
    client = make_client(emu)
    assert len(keyed(run_and_check(emu, client, tmp_path))) == 1
    assert not keyed(run_and_check(emu, client, tmp_path))

    # the view's /fields answer changes (its field takes the source field's new description)
    emu.update_field("Orders", "Note", {"Description": "what the customer asked for"})
    again = keyed(run_and_check(emu, client, tmp_path))
    assert [e.status for e in again] == [404], "a design change may give the keys back"
    assert not keyed(run_and_check(emu, client, tmp_path)), "refused again: remembered again"

    # Caspio upgraded the view along with a design change: read by its keys, memory gone
    view = emu.store.view(VIEW)
    view.scope.hidden = emulator_keys.key_fields(view.tables)
    emu.update_field("Orders", "Note", {"Description": "upgraded"})
    calls = run_and_check(emu, client, tmp_path)
    assert calls and len(keyed(calls)) == len(calls) and all(e.status == 200 for e in calls)
    assert KEYS_REFUSED_STATE not in view_state(tmp_path)


FIELDS = [{"Name": "Name", "Type": "STRING", "TableFieldName": "Customers.Name"}]
NOW = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)


def test_a_remembered_refusal_holds_for_the_same_fields_until_the_retry_time() -> None:
    state: dict[str, Any] = {"fields": list(FIELDS)}
    remember_keys(state, None, NOW)
    assert KEYS_REFUSED_STATE not in state, "keys not tried: nothing learned"
    remember_keys(state, False, NOW)
    assert keys_remembered_refused(state, FIELDS, NOW + KEYS_RETRY_AFTER - dt.timedelta(hours=1))
    assert not keys_remembered_refused(state, FIELDS, NOW + KEYS_RETRY_AFTER)
    assert not keys_remembered_refused(state, FIELDS, NOW - dt.timedelta(days=1))  # clock moved
    other = [{**FIELDS[0], "Description": "new"}]
    assert not keys_remembered_refused(state, other, NOW)
    assert not keys_remembered_refused({**state, KEYS_REFUSED_STATE: "soon"}, FIELDS, NOW)
    remember_keys(state, True, NOW)
    assert KEYS_REFUSED_STATE not in state, "accepted keys forget the refusal"


def test_plan_object_decides_from_the_remembered_refusal() -> None:
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    state = {"fields": list(FIELDS), KEYS_REFUSED_STATE: now}
    assert plan_object(VIEW, "views", FIELDS, state, TableOptions()).view_keys_refused
    assert not plan_object("T", "tables", FIELDS, state, TableOptions()).view_keys_refused
    stale = plan_object(VIEW, "views", FIELDS, state, TableOptions(), stale="another place")
    assert not stale.view_keys_refused, "a state that does not describe the load is not used"
