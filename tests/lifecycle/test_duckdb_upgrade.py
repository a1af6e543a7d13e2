"""A DuckDB file written by DuckDB 1.x (what earlier releases of this project installed), synced
on after the upgrade to DuckDB 2 from a fresh machine: the run continues incrementally from the
file's own state and ends equal to Caspio, and DuckDB 1.x still reads the file afterwards (a
user's other tools may pin it).

The old DuckDB is installed from the package index into a directory of its own and put first
on the path of a child process, which runs the same ``caspio-sync run`` there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.cli import main
from tests.helpers import (
    people_account,
    sync_on_a_fresh_machine_after_a_change,
    use_emulator_credentials,
)

OLD_DUCKDB = "1.5.6"
REPO = Path(__file__).resolve().parents[2]
COUNT_PEOPLE = "select count(*), sum(age) from caspio.people"


@pytest.fixture(scope="module")
def old_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("duckdb-old")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
        + [f"duckdb=={OLD_DUCKDB}"],
        check=True,
        timeout=300,
    )
    return target


def _with_old_duckdb(old: Path, code: str, data_dir: Path) -> str:
    """``code`` in a child process that imports DuckDB ``OLD_DUCKDB``; its stdout."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(old), str(REPO)]),
        DLT_DATA_DIR=str(data_dir),
    )
    prelude = f"import duckdb\nassert duckdb.__version__ == {OLD_DUCKDB!r}, duckdb.__version__\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_duckdb_1_file_syncs_on_under_duckdb_2_and_stays_readable_by_1(
    caspio_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, old_duckdb: Path
) -> None:
    assert int(duckdb.__version__.split(".")[0]) >= 2, "this suite runs DuckDB 2"
    emu = caspio_emulator_factory(dataset=people_account(45))
    use_emulator_credentials(monkeypatch, emu)
    monkeypatch.chdir(tmp_path)
    run = "from pipelines.cli import main\nraise SystemExit(main(['run', '--no-progress']))\n"
    _with_old_duckdb(old_duckdb, run, tmp_path / "old_machine")

    # the upgraded install, on a fresh machine: no local pipeline state, the same file
    sync_on_a_fresh_machine_after_a_change(
        emu, monkeypatch, tmp_path / "new_machine", lambda: main(["run", "--no-progress"])
    )

    with duckdb.connect("caspio_sync.duckdb", read_only=True) as conn:
        now = conn.execute(COUNT_PEOPLE).fetchone()
    read_back = (
        f"con = duckdb.connect('caspio_sync.duckdb', read_only=True)\n"
        f"print(con.execute({COUNT_PEOPLE!r}).fetchone())\n"
    )
    assert _with_old_duckdb(old_duckdb, read_back, tmp_path / "old_machine").strip() == str(now)
