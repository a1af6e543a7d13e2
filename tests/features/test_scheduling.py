"""Scheduling artefacts, tested as far as a machine without network and without Airflow allows:
the workflow parses and runs real `caspio-sync` commands, the cron wrapper really syncs against
the emulator and refuses to overlap, and the Airflow DAG's per-table callables really sync."""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.cli import build_parser
from tests.helpers import destination_for, duckdb_tables, use_emulator_credentials, with_password

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "deploy" / "github-actions" / "caspio-sync.yml"
WRAPPER = ROOT / "deploy" / "cron" / "caspio-sync.sh"
CRONTAB = ROOT / "deploy" / "cron" / "crontab"
SMALL: dict[str, Any] = {
    "tables": {
        "Contacts": {
            "fields": [
                {"Name": "Name", "Type": "STRING"},
                {
                    "Name": "Updated",
                    "Type": "TIMESTAMP",
                    "OnInsert": True,
                    "OnUpdate": True,
                    "TimeZone": "UTC",
                },
            ],
            "rows": [{"Name": f"c{i}"} for i in range(1, 21)],
        },
        "Notes": {"fields": [{"Name": "Body", "Type": "TEXT"}], "rows": [{"Body": "n"}] * 5},
    }
}


def _caspio_sync_commands(script: str) -> list[list[str]]:
    return [
        shlex.split(line.strip())
        for line in script.splitlines()
        if line.strip().startswith("caspio-sync ")
    ]


def test_workflow_parses_and_its_steps_are_real_commands() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1: on -> True
    assert {s["cron"] for s in triggers["schedule"]} == {"17 * * * *", "43 2 * * *"}
    job = workflow["jobs"]["sync"]
    env = job["env"]
    for key in ("CLIENT_ID", "CLIENT_SECRET", "INTEGRATION_URL"):
        assert env[f"SOURCES__CASPIO__CREDENTIALS__{key}"].startswith("${{ secrets.")
    runs = [step["run"] for step in job["steps"] if "run" in step]
    readme_install = "pip install -e ."
    assert readme_install in (ROOT / "README.md").read_text()
    assert readme_install in runs
    commands = [cmd for script in runs for cmd in _caspio_sync_commands(script)]
    assert {c[1] for c in commands} >= {"run", "reconcile", "plan", "check"}
    parser = build_parser()
    for command in commands:
        expanded = [a.replace("$CASPIO_DESTINATION", "postgres") for a in command[1:]]
        parser.parse_args(expanded)  # exits (SystemExit) on an unknown command or option
    # every credential comes from the CI secret store, none is written into the workflow
    credentials = {k: v for k, v in env.items() if "CREDENTIALS" in k}
    assert len(credentials) == 4
    assert all(v.startswith("${{ secrets.") for v in credentials.values())


def test_crontab_lines_call_the_wrapper_with_valid_commands() -> None:
    parser = build_parser()
    lines = [
        line
        for line in CRONTAB.read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 2
    for line in lines:
        fields = line.split()
        assert len(fields[:5]) == 5 and fields[5].endswith("deploy/cron/caspio-sync.sh")
        command = fields[6 : fields.index(">>")]
        parser.parse_args(command)


def _wrapper_env(emu: Any, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SOURCES__CASPIO__CREDENTIALS__CLIENT_ID=emu.client_id,
        SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET=emu.client_secret,
        SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL=emu.base_url,
        CASPIO_PROJECT_DIR=str(tmp_path),
        CASPIO_VENV=str(Path(sys.executable).parent.parent),
        CASPIO_LOCK_FILE=str(tmp_path / "caspio-sync.lock"),
    )
    return env


def test_cron_wrapper_runs_a_sync_and_never_overlaps(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=SMALL)
    env = _wrapper_env(emu, tmp_path)
    cmd = [str(WRAPPER), "run", "--duckdb-file", "cron.duckdb", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "end: exit 0" in done.stdout
    assert duckdb_tables(str(tmp_path / "cron.duckdb")) == {"contacts": 20, "notes": 5}

    with open(tmp_path / "caspio-sync.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert busy.returncode == 75 and "skipping this run" in busy.stderr

    failing = subprocess.run(
        [str(WRAPPER), "run", "--tables", "Nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failing.returncode == 1 and "end: exit 1" in failing.stdout


def test_dag_module_imports_without_airflow_and_its_callables_sync(
    caspio_emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy.airflow import caspio_dag, caspio_tasks

    assert caspio_dag.caspio_tasks is caspio_tasks  # the DAG calls exactly these
    emu = caspio_emulator_factory(dataset=SMALL)
    use_emulator_credentials(monkeypatch, emu)
    destination = destination_for("duckdb", tmp_path)
    monkeypatch.setenv("CASPIO_TABLES", "contacts, NOTES")
    tables = caspio_tasks.list_tables()
    assert tables == ["Contacts", "Notes"]
    caspio_tasks.prepare_dataset(destination=destination)
    results = [caspio_tasks.sync_table(t, destination=destination) for t in tables]
    assert [r["rows"] for r in results] == [20, 5]
    assert duckdb_tables(str(tmp_path / "features.duckdb")) == {"contacts": 20, "notes": 5}

    # per-table pipelines keep per-table state: the next run reads nothing new (its /fields,
    # to see design changes, and one empty page)
    again = caspio_tasks.sync_table("Contacts", destination=destination)
    assert again["api_calls"] == 2
    emu.delete("Contacts", "PK_ID = 5")
    removed = caspio_tasks.reconcile_table("Contacts", destination=destination)
    assert removed["removed"] == 1
    assert duckdb_tables(str(tmp_path / "features.duckdb"))["contacts"] == 19


def _sync_in_worker(table: str, dsn: str, dataset: str, started: Any) -> dict[str, Any]:
    """One Airflow worker process: import the task module, sync one table. Each task waits at
    ``started`` (a barrier of all tasks) before it syncs: if the tasks did not run at the same
    time, the barrier breaks and the task fails (no timing is measured)."""
    import os

    import dlt

    from deploy.airflow import caspio_tasks

    started.wait(timeout=120)
    result = caspio_tasks.sync_table(
        table, destination=dlt.destinations.postgres(credentials=dsn), dataset_name=dataset
    )
    return {**result, "pid": os.getpid()}


@pytest.mark.postgres
def test_dag_tasks_run_in_parallel_processes_into_postgres(
    caspio_emulator_factory: Any,
    postgres_dsn: str,
    postgres_dataset: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dlt
    import psycopg2

    from deploy.airflow import caspio_tasks

    emu = caspio_emulator_factory(dataset=SMALL, generate={"Big": 3000})
    use_emulator_credentials(monkeypatch, emu)
    dsn = with_password(postgres_dsn)
    caspio_tasks.prepare_dataset(
        destination=dlt.destinations.postgres(credentials=dsn), dataset_name=postgres_dataset
    )
    tables = ["Contacts", "Notes", "Big"]
    context = get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(3, mp_context=context) as pool:
        started = manager.Barrier(len(tables))
        results = list(
            pool.map(_sync_in_worker, tables, [dsn] * 3, [postgres_dataset] * 3, [started] * 3)
        )
    assert [r["rows"] for r in results] == [20, 5, 3000]
    assert len({r["pid"] for r in results}) == 3, "the tasks did not run in three processes"
    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        for table, rows in (("contacts", 20), ("notes", 5), ("big", 3000)):
            cur.execute(f'SELECT count(*) FROM "{postgres_dataset}"."{table}"')
            assert cur.fetchone() == (rows,)
        # every task staged its merges (the call ledger's copy) in a schema of its own
        cur.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = "
            "'_caspio_call_ledger' AND table_schema LIKE %s",
            (f"{postgres_dataset}\\_staging%",),
        )
        staged = sorted(row[0] for row in cur.fetchall())
        assert staged == [
            f"{postgres_dataset}_staging_caspio_{t}" for t in ("big", "contacts", "notes")
        ]
