"""Table design changes between runs, on DuckDB and PostgreSQL: every run ends equal to the API
value for value, or stops in one line before loading anything."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.cli import main
from tests.helpers import (
    design,
    duckdb_values,
    expected_rows,
    people_account,
    postgres_rows,
    use_emulator_credentials,
)

BASE = {"Name": "STRING", "Age": "INTEGER", "Balance": "CURRENCY", "Updated": "TIMESTAMP"}


class Target:
    """Where the CLI syncs (``args``) and how the test reads that destination back."""

    def __init__(self, kind: str, monkeypatch: pytest.MonkeyPatch, request: Any) -> None:
        self.kind = kind
        if kind == "duckdb":
            self.args = ["--duckdb-file", "design.duckdb"]
            self.read = lambda table, cols: duckdb_values("design.duckdb", table, cols)
        else:
            dsn = request.getfixturevalue("postgres_dsn")
            schema = request.getfixturevalue("postgres_dataset")
            monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", dsn)
            self.args = ["--destination", "postgres", "--dataset", schema]
            self.read = lambda table, cols: postgres_rows(dsn, schema, table, cols)

    def sync(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["run", "--no-progress", *self.args, *extra])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    def assert_equal(self, emu: Any, types: dict[str, str]) -> None:
        assert self.read("people", list(types)) == expected_rows(emu, "People", types)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: Any, monkeypatch: pytest.MonkeyPatch) -> Target:
    return Target(request.param, monkeypatch, request)


@pytest.fixture
def emu(caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = caspio_emulator_factory(dataset=people_account(320))
    use_emulator_credentials(monkeypatch, emulator)
    return emulator


def test_field_added_fills_every_row(
    emu: Any, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    assert target.sync(capsys)[0] == 0
    design(emu, "POST", "tables/People/fields", {"Name": "Nick", "Type": "STRING"})
    design(
        emu,
        "POST",
        "tables/People/fields",
        {"Name": "Double_Age", "Type": "NUMBER", "IsFormula": True, "Formula": "Age * 2"},
    )
    emu.set_clock(None)
    emu.update("People", "PK_ID <= 5", {"Nick": "n"})
    code, out, err = target.sync(capsys)
    assert code == 0, err
    assert "People: field(s) added in Caspio: Nick, Double_Age" in out
    assert "People: read in full" in out
    target.assert_equal(emu, {**BASE, "Nick": "STRING", "Double_Age": "NUMBER"})
    # the next run is incremental again
    emu.reset_log()
    assert target.sync(capsys)[0] == 0
    records = [e for e in emu.log if e.path.endswith("/records")]
    assert len(records) == 1 and "Updated" in str(records[0].query)


def test_field_deleted_keeps_its_column(
    emu: Any, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    assert target.sync(capsys)[0] == 0
    before = target.read("people", ["Age"])
    design(emu, "DELETE", "tables/People/fields/Age")
    code, out, err = target.sync(capsys)
    assert code == 0, err
    assert "People: field(s) no longer in Caspio: Age (columns kept)" in out
    assert target.read("people", ["Age"]) == before, "the column keeps the values it had"
    target.assert_equal(emu, {k: v for k, v in BASE.items() if k != "Age"})


def test_field_renamed_is_a_delete_and_an_add(
    emu: Any, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    assert target.sync(capsys)[0] == 0
    design(emu, "PUT", "tables/People/fields/Name", {"Name": "Full_Name"})
    code, out, err = target.sync(capsys)
    assert code == 0, err
    assert "field(s) added in Caspio: Full_Name" in out
    assert "field(s) no longer in Caspio: Name (columns kept)" in out
    target.assert_equal(emu, {"Full_Name": "STRING", "Age": "INTEGER", "Balance": "CURRENCY"})


def test_field_retyped_stops_then_the_named_command_reloads(
    emu: Any, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    assert target.sync(capsys)[0] == 0
    before = target.read("people", list(BASE))
    design(emu, "PUT", "tables/People/fields/Balance", {"Type": "STRING"})
    emu.set_clock(None)
    emu.update("People", "PK_ID <= 3", {"Name": "changed"})
    emu.reset_log()
    code, out, err = target.sync(capsys)
    assert code == 1
    line = err.strip()
    assert len(line.splitlines()) == 1, line
    assert "People" in line and "Balance" in line and "CURRENCY" in line and "STRING" in line
    assert not any(e.path.endswith("/records") for e in emu.log), "stopped before reading"
    assert target.read("people", list(BASE)) == before, "nothing was loaded"
    command = line.split("new type: ")[1].split(" (Python")[0]
    assert command == "caspio-sync run --tables People --full-refresh"
    code, out, err = target.sync(capsys, *command.split()[2:])
    assert code == 0, err
    target.assert_equal(emu, {**BASE, "Balance": "STRING"})


def test_check_and_plan_show_pending_design_changes(
    emu: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--no-progress"]) == 0
    design(emu, "POST", "tables/People/fields", {"Name": "Nick", "Type": "STRING"})
    capsys.readouterr()
    emu.reset_log()
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "People: pending design change: field(s) added in Caspio: Nick" in out
    assert "People: read in full (1 page calls)" in out
    planned = int(out.rsplit("would spend ", 1)[1].split()[0].replace(",", ""))
    emu.reset_log()
    assert main(["run", "--no-progress"]) == 0
    assert emu.calls == planned
