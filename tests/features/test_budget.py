"""`plan` predicts the calls a run spends; `--max-calls` stops before the budget and resumes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipelines.budget import run_with_budget
from pipelines.caspio_pipeline import build_pipeline, run_sync, source_settings
from pipelines.plan import plan_sync
from sources.caspio.budget import CallBudget, CallBudgetExceeded
from tests.helpers import CONTACTS_AND_NOTES, client_for, duckdb_tables, read_rows

API = "/integrations/rest/v3/tables/"


def _calls_by_table(emu: Any, since: int) -> Counter[str]:
    """Calls per table name in the emulator's request log from entry ``since`` on."""
    counts: Counter[str] = Counter()
    for entry in emu.log[since:]:
        if entry.path.startswith(API):
            counts[entry.path[len(API) :].split("/")[0].lower()] += 1
    return counts


def _run(emu: Any, tmp_path: Path, **kwargs: Any) -> Any:
    return run_sync(
        destination=_destination(tmp_path),
        pipeline_name="budget_test",
        pipelines_dir=str(tmp_path / "pipelines"),
        client=client_for(emu),
        **kwargs,
    )


def _destination(tmp_path: Path) -> Any:
    import dlt

    return dlt.destinations.duckdb(credentials=str(tmp_path / "budget.duckdb"))


def _pipeline(tmp_path: Path) -> Any:
    return build_pipeline(
        _destination(tmp_path), "caspio", "budget_test", pipelines_dir=str(tmp_path / "pipelines")
    )


def _plan(emu: Any, tmp_path: Path, tables: list[str] | None = None) -> Any:
    client = client_for(emu)
    settings = source_settings("budget_test", tables, client.credentials)
    return plan_sync(_pipeline(tmp_path), client, settings)


def _assert_parity(emu: Any, tmp_path: Path, tables: list[str]) -> None:
    pipeline = _pipeline(tmp_path)
    for table in tables:
        loaded = [r["pk_id"] for r in read_rows(pipeline, table.lower())]
        assert loaded == [r["PK_ID"] for r in emu.table_rows(table)], table


@pytest.mark.parametrize("tables", [None, ["Contacts", "Big"]])
def test_plan_equals_the_calls_the_run_spends(
    caspio_emulator_factory: Any, tmp_path: Path, tables: list[str] | None
) -> None:
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES, generate={"Big": 2500})
    for step in ("first run", "incremental run"):
        plan = _plan(emu, tmp_path, tables)
        mark, calls = len(emu.log), emu.calls
        _run(emu, tmp_path, tables=tables)
        assert emu.calls - calls == plan.total_calls, (step, plan.summary())
        per_table = _calls_by_table(emu, mark)
        assert {t.lower(): c for t, c in plan.calls_by_table().items()} == dict(per_table), step
        if step == "first run":
            assert plan.calls_by_table()["Big"] == 1 + 3  # /fields + ceil(2500 / 1000)
            emu.update("Contacts", "PK_ID <= 3", {"Score": 0})
            emu.generate("Big", 1200)
            emu.update("Big", "PK_ID = 7", {"Quantity": 1})
    assert plan.calls_by_table()["Contacts"] == 2  # /fields + 3 changed rows: one page
    assert plan.calls_by_table()["Big"] == 3  # /fields + 1,201 changed rows: two pages
    _assert_parity(emu, tmp_path, tables or ["Contacts", "Notes", "Big"])


def test_max_calls_stops_before_the_budget_and_the_next_run_resumes(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES, generate={"Big": 2500})
    plan = _plan(emu, tmp_path)
    budget = plan.total_calls - 2  # Big (the last table) cannot finish within it
    calls = emu.calls
    report = run_with_budget(
        budget,
        destination=_destination(tmp_path),
        pipeline_name="budget_test",
        pipelines_dir=str(tmp_path / "pipelines"),
        client=client_for(emu),
    )
    spent = emu.calls - calls
    assert spent <= budget == report.max_calls
    assert report.api_calls == spent
    assert isinstance(report.stopped, CallBudgetExceeded)
    assert report.completed == ["contacts", "notes"] and report.not_synced == ["big"]
    assert "--max-calls" in str(report.stopped)
    _assert_parity(emu, tmp_path, ["Contacts", "Notes"])
    assert "big" not in duckdb_tables(str(tmp_path / "budget.duckdb"))  # no half table

    # the next run (budget large enough) loads what is left; Contacts costs one call, as planned
    report = run_with_budget(
        100,
        destination=_destination(tmp_path),
        pipeline_name="budget_test",
        pipelines_dir=str(tmp_path / "pipelines"),
        client=client_for(emu),
    )
    assert report.stopped is None and report.not_synced == []
    _assert_parity(emu, tmp_path, ["Contacts", "Notes", "Big"])


def test_call_budget_refuses_the_call_past_the_limit(caspio_emulator_factory: Any) -> None:
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES)
    client = client_for(emu)
    client.get("/tables")
    client.budget = CallBudget(2)
    client.get("/tables")
    client.get("/views")
    calls = emu.calls
    with pytest.raises(CallBudgetExceeded, match="2 of --max-calls 2"):
        client.get("/tables")
    assert emu.calls == calls  # refused before sending


def test_cli_plan_run_max_calls_and_reconcile(
    caspio_emulator_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipelines.cli import main
    from pipelines.commands import EXIT_BUDGET_REACHED
    from tests.helpers import use_emulator_credentials

    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES)
    use_emulator_credentials(monkeypatch, emu)
    target = ["--duckdb-file", str(tmp_path / "cli.duckdb")]

    assert main(["plan", *target]) == 0
    out = capsys.readouterr().out
    assert "A sync now would spend 6 Caspio API calls" in out  # 2 listings + 2 x (fields + page)

    assert main(["run", "--max-calls", "4", "--no-progress", *target]) == EXIT_BUDGET_REACHED
    assert "stopped by the call budget before notes" in capsys.readouterr().out
    assert duckdb_tables(str(tmp_path / "cli.duckdb")) == {"contacts": 30}

    assert main(["run", "--max-calls", "10", "--no-progress", *target]) == 0
    emu.delete("Notes", "PK_ID = 1")
    assert main(["reconcile", "--mode", "mark", *target]) == 0
    assert "1 deleted rows reconciled" in capsys.readouterr().out
    # a plain run after the budgeted ones spends nothing new on unchanged tables
    assert main(["run", "--no-progress", *target]) == 0
    assert duckdb_tables(str(tmp_path / "cli.duckdb")) == {
        "contacts": 30,
        "notes": len(emu.table_rows("Notes")),
    }
