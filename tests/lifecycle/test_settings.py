"""One setting, one meaning: each ``[sources.caspio]`` setting, from ``.dlt/config.toml`` or its
environment variable, acts alike in ``caspio()``, ``run``, ``plan``, ``check`` and ``reconcile``;
a command-line flag overrides it; a bad value stops every entry point in one line."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from sources.caspio import caspio
from tests.helpers import duckdb_tables, use_emulator_credentials

ENTRY_POINTS = ["run", "plan", "check", "reconcile"]


def _configure(how: str, key: str, toml_value: str, env_value: str, mp: Any) -> None:
    """The setting in ./.dlt/config.toml (dlt reads the current directory's) or in its env var."""
    if how == "toml":
        Path(".dlt").mkdir(exist_ok=True)
        Path(".dlt/config.toml").write_text(f"[sources.caspio]\n{key} = {toml_value}\n")
        _reload_config()
    else:
        mp.setenv(f"SOURCES__CASPIO__{key.upper()}", env_value)


def _reload_config() -> None:
    """dlt reads the toml files once per process: read this test's again (as a new process)."""
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    Container()[PluggableRunContext].reload()


def _cli(command: str, *args: str) -> list[str]:
    extra = ["--no-progress"] if command == "run" else []
    return [command, *extra, *args]


@pytest.fixture(autouse=True)
def _no_toml_settings_afterwards() -> Iterator[None]:
    """After the test, dlt's config is read again in an empty directory, as a test starts (in
    its own ``tmp_path``): no later test of the worker sees this test's settings, nor the
    repository's ``.dlt/config.toml``."""
    start = os.getcwd()
    yield
    with tempfile.TemporaryDirectory() as empty, contextlib.chdir(empty):
        _reload_config()
    os.chdir(start)


@pytest.fixture
def account(caspio_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    use_emulator_credentials(monkeypatch, caspio_emulator)
    return caspio_emulator


def _objects_touched(emu: Any, since: int) -> set[str]:
    """Objects whose records an entry point read (from the emulator's own request log)."""
    names = set()
    for entry in emu.log[since:]:
        parts = entry.path.split("/")
        if parts[-1] == "records" and len(parts) >= 3:
            names.add(parts[-2].lower())
    return names


@pytest.mark.parametrize("how", ["toml", "env"])
@pytest.mark.parametrize("entry", ["caspio()", *ENTRY_POINTS])
def test_tables_setting(
    account: Any, monkeypatch: pytest.MonkeyPatch, how: str, entry: str
) -> None:
    _configure(how, "tables", '["Orders"]', '["Orders"]', monkeypatch)
    if entry == "caspio()":
        assert list(caspio().resources) == ["orders"]
        return
    if entry == "reconcile":
        assert main(_cli("run", "--tables", "Orders", "Customers")) == 0
    mark = len(account.log)
    assert main(_cli(entry)) == 0
    assert _objects_touched(account, mark) == {"orders"}, entry
    if entry == "run":
        assert set(duckdb_tables("caspio_sync.duckdb")) == {"orders"}
        # a flag overrides the setting
        mark = len(account.log)
        assert main(_cli("run", "--tables", "Products")) == 0
        assert _objects_touched(account, mark) == {"products"}


@pytest.mark.parametrize("entry", ["caspio()", "run", "plan", "check"])
def test_include_views_setting(account: Any, monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    _configure("env", "include_views", "false", "false", monkeypatch)
    if entry == "caspio()":
        assert "Customer_Orders" not in caspio().resources
        return
    mark = len(account.log)
    assert main(_cli(entry)) == 0
    touched = _objects_touched(account, mark)
    assert "customer_orders" not in touched and "orders" in touched, entry


@pytest.mark.parametrize("how", ["toml", "env"])
def test_page_size_setting_plan_equals_the_run(
    account: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    _configure(how, "page_size", "100", "100", monkeypatch)
    assert caspio().resources["orders"] is not None
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    planned = int(out.rsplit("would spend ", 1)[1].split()[0].replace(",", ""))
    account.reset_log()
    assert main(_cli("run")) == 0
    assert account.calls == planned
    orders = [e for e in account.log if e.path.endswith("/tables/Orders/records")]
    assert len(orders) == math.ceil(len(account.table_rows("Orders")) / 100)


BAD_SETTINGS = [
    ("page_size", "0", "0", "page_size must be between 5 and 1000"),
    (
        "table_options",
        '{Orders = {cursor_field = "Nope"}}',
        '{"Orders": {"cursor_field": "Nope"}}',
        "'Nope' does not exist in Orders",
    ),
    (
        "table_options",
        '{Orders = {write_disposition = "banana"}}',
        '{"Orders": {"write_disposition": "banana"}}',
        "write_disposition must be one of",
    ),
]


@pytest.mark.parametrize("how", ["toml", "env"])
@pytest.mark.parametrize("key,toml_value,env_value,message", BAD_SETTINGS)
@pytest.mark.parametrize("entry", ["caspio()", *ENTRY_POINTS])
def test_bad_settings_stop_every_entry_point(
    account: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    how: str,
    key: str,
    toml_value: str,
    env_value: str,
    message: str,
    entry: str,
) -> None:
    if entry == "reconcile" and "cursor_field" in toml_value:
        pytest.skip("reconcile reads keys only: a cursor is no setting of it")
    _configure(how, key, toml_value, env_value, monkeypatch)
    if entry == "caspio()":
        import dlt

        pipeline = dlt.pipeline("settings", destination=dlt.destinations.duckdb("s.duckdb"))
        with pytest.raises(Exception, match=message.replace("(", r"\(")):
            pipeline.run(caspio(tables=["Orders"]))
        return
    capsys.readouterr()
    account.reset_log()
    assert main(_cli(entry)) == 1, entry
    err = capsys.readouterr()
    text = (err.err + err.out).strip()
    assert message in text, text
    if entry != "check":  # check goes on to count every object's rows, listing each problem
        assert not any(e.path.endswith("/tables/Orders/records") for e in account.log)
    if key == "page_size":
        assert "SOURCES__CASPIO__PAGE_SIZE" in text, "the error says where it is set"


def test_check_lists_every_problem_of_table_options(
    account: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(".dlt").mkdir()
    Path(".dlt/config.toml").write_text(
        "[sources.caspio.table_options.Ordrs]\nlag = 5\n"
        '[sources.caspio.table_options.Orders]\ncursor_field = "Nope"\n'
        '[sources.caspio.table_options.Products]\nwrite_disposition = "banana"\n'
        '[sources.caspio.table_options.Customers]\nfields = ["Name", "Missing_Field"]\n'
        "[sources.caspio.table_options.Order_Items]\ncursor_field = false\n"
        'initial_value = "2024-01-01T00:00:00Z"\n'
    )
    _reload_config()
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "table_options.Ordrs: no table or view of this account matches 'Ordrs'" in out
    assert "'Nope' does not exist in Orders" in out
    assert "write_disposition must be one of" in out
    assert "Missing_Field" in out
    assert "table_options.Order_Items.initial_value needs a cursor" in out
