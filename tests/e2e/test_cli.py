"""`caspio-sync` end to end: real HTTP to the emulator, a real DuckDB file, real exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from caspio_emulator import DEMO_DATASET, Emulator
from pipelines.cli import main
from tests.helpers import duckdb_tables, use_emulator_credentials


def _object_names(emulator: Any) -> list[str]:
    import requests

    token = emulator.access_token()
    headers = {"Authorization": f"Bearer {token}"}
    names: list[str] = []
    for kind in ("tables", "views"):
        names += requests.get(f"{emulator.v3_url}/{kind}", headers=headers, timeout=10).json()[
            "Result"
        ]
    return names


def test_demo_syncs_the_demo_account_into_duckdb(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--duckdb-file", str(tmp_path / "demo.duckdb")]) == 0
    out = capsys.readouterr().out
    loaded = duckdb_tables(str(tmp_path / "demo.duckdb"))

    with Emulator(dataset=DEMO_DATASET) as reference:
        names = _object_names(reference)
        expected = {name.lower(): len(reference.table_rows(name)) for name in names}
    assert {name: loaded.get(name) for name in expected} == expected
    assert all(count > 0 for count in expected.values())
    assert "API calls" in out
    for name in names:
        assert name.lower() in out.lower()


def test_run_then_incremental_run_spends_two_calls_per_object(
    caspio_emulator: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_emulator_credentials(monkeypatch, caspio_emulator)
    assert main(["run", "--duckdb-file", "first.duckdb", "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert "Caspio API calls" in first
    objects = _object_names(caspio_emulator)
    loaded = duckdb_tables("first.duckdb")
    for name in objects:
        assert loaded[name.lower()] == len(caspio_emulator.table_rows(name))

    caspio_emulator.reset_log()
    assert main(["run", "--duckdb-file", "first.duckdb", "--no-progress"]) == 0
    # Nothing changed: per object its /fields (design changes) and one page, plus the two
    # listing calls, no token call
    # (the token is cached on disk, 0600), and nothing duplicated.
    assert caspio_emulator.calls == 2 * len(objects) + 2
    assert not any(entry.is_token for entry in caspio_emulator.log)
    assert duckdb_tables("first.duckdb") == loaded


def test_run_selected_tables_only(caspio_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_emulator_credentials(monkeypatch, caspio_emulator)
    first = _object_names(caspio_emulator)[0]
    assert main(["run", "--tables", first, "--duckdb-file", "one.duckdb", "--no-progress"]) == 0
    assert set(duckdb_tables("one.duckdb")) == {first.lower()}


def test_check_lists_objects_with_row_counts(
    caspio_emulator: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_emulator_credentials(monkeypatch, caspio_emulator)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for name in _object_names(caspio_emulator):
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert f"{len(caspio_emulator.table_rows(name)):,}" in line


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("wrong_secret", "CLIENT_SECRET"),
        ("unknown_table", "Unknown Caspio table or view"),
        ("missing_config", "SOURCES__CASPIO__CREDENTIALS"),
        ("http_remote", "https"),
    ],
)
def test_errors_are_one_clear_line_without_traceback(
    setup: str,
    expected: str,
    caspio_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["run", "--duckdb-file", "err.duckdb", "--no-progress"]
    if setup != "missing_config":
        use_emulator_credentials(monkeypatch, caspio_emulator)
    if setup == "wrong_secret":
        monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET", "not-the-secret")
    elif setup == "unknown_table":
        args += ["--tables", "No_Such_Table"]
    elif setup == "http_remote":
        monkeypatch.setenv(
            "SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL", "http://c1abc123.caspio.com"
        )

    assert main(args) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("caspio-sync: error: ")
    assert expected.lower() in lines[0].lower()
    assert "Traceback" not in captured.err + captured.out
    if setup == "unknown_table":
        # the message lists what exists, so the fix is in the message
        assert _object_names(caspio_emulator)[0] in lines[0]
    assert not Path("err.duckdb").exists() or duckdb_tables("err.duckdb") == {}
