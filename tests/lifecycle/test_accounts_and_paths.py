"""Over a deployment's life: a second account, a second directory, a new file or dataset, a
dropped table, a fresh machine. Each ends equal to Caspio, or stops in one clear line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.cli import main
from tests.helpers import (
    assert_people_equal_to_api,
    people_account,
    sync_on_a_fresh_machine_after_a_change,
    use_emulator_credentials,
)


def _sync(*args: str) -> int:
    return main(["run", "--no-progress", *args])


def test_two_accounts_two_directories(
    caspio_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_a = caspio_emulator_factory(dataset=people_account(50, "A"))
    account_b = caspio_emulator_factory(dataset=people_account(80, "B"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    monkeypatch.chdir(tmp_path / "a")
    use_emulator_credentials(monkeypatch, account_a)
    assert _sync() == 0
    assert_people_equal_to_api(account_a, str(tmp_path / "a" / "caspio_sync.duckdb"))

    # B in b/: written in b/ (not into a/'s file), every row of B
    monkeypatch.chdir(tmp_path / "b")
    use_emulator_credentials(monkeypatch, account_b)
    capsys.readouterr()
    assert _sync() == 0
    assert str(tmp_path / "b" / "caspio_sync.duckdb") in capsys.readouterr().out
    assert_people_equal_to_api(account_b, str(tmp_path / "b" / "caspio_sync.duckdb"))
    assert_people_equal_to_api(account_a, str(tmp_path / "a" / "caspio_sync.duckdb"))

    # back to A in a/, after a change in A: a/ holds A's newer state, which dlt restores
    monkeypatch.chdir(tmp_path / "a")
    use_emulator_credentials(monkeypatch, account_a)
    account_a.set_clock(None)
    account_a.update("People", "PK_ID = 1", {"Name": "changed"})
    assert _sync() == 0
    assert_people_equal_to_api(account_a, str(tmp_path / "a" / "caspio_sync.duckdb"))
    assert_people_equal_to_api(account_b, str(tmp_path / "b" / "caspio_sync.duckdb"))


def test_credentials_switched_in_one_directory(
    caspio_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_a = caspio_emulator_factory(dataset=people_account(40, "A"))
    account_b = caspio_emulator_factory(dataset=people_account(25, "B"))
    use_emulator_credentials(monkeypatch, account_a)
    assert _sync() == 0
    use_emulator_credentials(monkeypatch, account_b)
    for command in (["plan"], ["run", "--no-progress"]):
        capsys.readouterr()
        account_b.reset_log()
        assert main(command) == 1, command
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "was built from Caspio account" in err, err
        assert not any("/records" in e.path for e in account_b.log), command
    assert _sync("--full-refresh") == 0
    assert_people_equal_to_api(account_b, "caspio_sync.duckdb")


def test_same_account_second_directory_reads_in_full(
    caspio_emulator: Any,
    caspio_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(60))
    use_emulator_credentials(monkeypatch, emu)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "b")
    assert _sync() == 0  # b/ holds the account as it was then
    monkeypatch.chdir(tmp_path / "a")
    assert _sync() == 0
    emu.set_clock(None)
    emu.update("People", "PK_ID <= 5", {"Name": "changed"})
    assert _sync() == 0  # a/ incremental: the pipeline's state now describes a/

    # b/ again: its own older state is not restored over the newer one, which describes a/
    monkeypatch.chdir(tmp_path / "b")
    capsys.readouterr()
    assert _sync() == 0
    out = capsys.readouterr().out
    assert "People: read in full: its state was built for another destination" in out
    assert_people_equal_to_api(emu, str(tmp_path / "b" / "caspio_sync.duckdb"))
    assert_people_equal_to_api(emu, str(tmp_path / "a" / "caspio_sync.duckdb"))


def test_dropped_table_stops_then_reloads_and_new_dataset_is_read_in_full(
    caspio_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(30))
    use_emulator_credentials(monkeypatch, emu)
    assert _sync() == 0
    with duckdb.connect("caspio_sync.duckdb") as conn:
        conn.execute("drop table caspio.people")
    capsys.readouterr()
    emu.reset_log()
    assert _sync() == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no longer holds table people" in err, err
    assert not any("/records" in e.path for e in emu.log)
    command = err.split("Reload it: ")[1].split(" (Python")[0]
    assert command == "caspio-sync run --tables People --full-refresh"
    assert main([*command.split()[1:], "--no-progress"]) == 0
    assert_people_equal_to_api(emu, "caspio_sync.duckdb")

    assert _sync("--dataset", "other") == 0
    assert_people_equal_to_api(emu, "caspio_sync.duckdb", dataset="other")


def test_fresh_machine_with_old_destination_continues_incrementally(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(45))
    use_emulator_credentials(monkeypatch, emu)
    assert _sync() == 0
    sync_on_a_fresh_machine_after_a_change(emu, monkeypatch, tmp_path / "fresh_machine", _sync)


def test_demo_from_two_directories_writes_where_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        capsys.readouterr()
        assert main(["demo"]) == 0
        out = capsys.readouterr().out
        path = tmp_path / name / "caspio_demo.duckdb"
        assert path.exists(), f"demo in {name}/ wrote elsewhere"
        assert str(path) in out
        with duckdb.connect(str(path), read_only=True) as conn:
            assert conn.execute("select count(*) from caspio.customers").fetchone()[0] > 0  # type: ignore[index]
    assert os.path.getsize(tmp_path / "second" / "caspio_demo.duckdb") > 0


def test_a_filtered_first_run_does_not_make_the_plain_run_skip_rows(
    caspio_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A backfill window (``table_options.where``) loads a part; the next run without it must
    still read the rest, although the window's newest stamp is past them."""
    emu = caspio_emulator_factory(dataset=people_account(120))
    use_emulator_credentials(monkeypatch, emu)
    monkeypatch.setenv("SOURCES__CASPIO__TABLE_OPTIONS", '{"People": {"where": "PK_ID > 100"}}')
    assert _sync() == 0
    monkeypatch.delenv("SOURCES__CASPIO__TABLE_OPTIONS")
    capsys.readouterr()
    assert _sync() == 0
    assert "People: read in full: its rows were read with other table_options" in (
        capsys.readouterr().out
    )
    assert_people_equal_to_api(emu, "caspio_sync.duckdb")
