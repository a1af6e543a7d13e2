"""The Airflow DAG under a real Airflow: scheduler, LocalExecutor, one process per table task.

Airflow lives in its own virtual environment (``deploy/airflow/install_airflow.sh``: pinned,
this project installed editable; .ci/run creates it, a local run creates or reuses it). The
module fixture runs one ``caspio_sync`` DAG run end to end, as a deployment would:

- a Caspio emulator in its own process (``caspio-emulator serve``): 6 tables of 2,000 rows, a
  rate limit of 24 calls per 10 s and 200 ms of latency; pages of 400 rows make the run need
  about 60 calls, so the window binds;
- Airflow's metadata in a PostgreSQL database created for the run (the LocalExecutor needs a
  server database) and dropped afterwards; the DAG files copied into a DAGs folder;
- ``airflow dags trigger`` and an ``airflow scheduler`` until the run ends, the data loaded into
  a fresh PostgreSQL schema.

The tests then read what happened from Airflow's own task instances, PostgreSQL (psycopg2) and
the emulator's request log and REST API: never from the connector.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import requests

from tests import wire_oracle
from tests.conftest import POSTGRES_DSN
from tests.helpers import drop_dataset

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "airflow"
INSTALLER = DEPLOY / "install_airflow.sh"
TABLES = ["Customers", "Orders", "Invoices", "Products", "Tickets", "Visits"]
ROWS = 2000
PAGE_SIZE = 400
RATE_LIMIT = (24, 10.0)
"""The account's window: 24 calls per 10 s; the run needs about 60."""
LATENCY_MS = 200
"""Enough that one table's reads last a second or so: the window fills while several task
processes are reading, as it would on a real account with larger tables."""
IN_FLIGHT_SECONDS = LATENCY_MS / 1000 + 0.1
"""Refusals this soon after the first one are calls sent before any process could know: the
first 429 reaches its sender one latency after it arrived (plus 0.1 s to share the pause)."""
MAX_PROBES = 5
"""Refusals in one stall after those in flight: one caller probing the full window with backoff
(3 or 4 a stall measured, one more allowed for where the window's edge falls), not one per task
process (that is at least one per process at every backoff step)."""
MAX_STALLS = 3
"""Stalls in the run: the first opens the episode, the second teaches the pace, one more
allowed for a pace read on the fast side (measured: 1 or 2)."""
RUN_DEADLINE = 240.0
"""Seconds for the DAG run to end (it takes about 90); then the test fails with the logs."""
INSTALL_TIMEOUT = 900.0
STEP_TIMEOUT = 120.0

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1200)]


@dataclasses.dataclass
class AirflowRun:
    """What one DAG run left behind, read after the scheduler stopped."""

    dag_state: str
    task_instances: list[dict[str, Any]]
    log: list[dict[str, Any]]
    emulator_url: str
    client_id: str
    client_secret: str
    schema: str
    seconds: float


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _airflow_venv() -> Path:
    """The Airflow venv, installed or reused; skipped only when no package index answers."""
    done = subprocess.run(
        [str(INSTALLER)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        env={**os.environ, "PYTHON": shutil.which("python3") or "python3"},
    )
    if done.returncode == 0:
        print(done.stderr.strip())
        return Path(done.stdout.strip().splitlines()[-1])
    tail = (done.stdout + done.stderr)[-3000:]
    if _in_ci():
        pytest.fail(f"CI=true and Airflow could not be installed:\n{tail}")
    index = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "apache-airflow"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if index.returncode != 0:
        pytest.skip("Airflow cannot be installed here: no package index answers (no network)")
    pytest.fail(f"the package index answers but Airflow did not install:\n{tail}")


def _database_dsn(database: str, driver: str = "postgresql") -> str:
    parts = urlsplit(POSTGRES_DSN)
    return urlunsplit((driver, parts.netloc, f"/{database}", parts.query, ""))


def _admin_sql(statement: str) -> None:
    conn = psycopg2.connect(POSTGRES_DSN, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def _start_emulator(tmp: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``caspio-emulator serve`` on a free loopback port; its URL and credentials."""
    out = (tmp / "emulator.out").open("w+")
    cmd = [sys.executable, "-m", "caspio_emulator.cli", "serve", "--port", "0", "--empty"]
    for table in TABLES:
        cmd += ["--generate", f"{table}={ROWS}"]
    cmd += ["--rate-limit", f"{RATE_LIMIT[0]}/{int(RATE_LIMIT[1])}"]
    cmd += ["--latency-ms", str(LATENCY_MS)]
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    info: dict[str, str] = {}
    while time.monotonic() < deadline and "client secret" not in info:
        if proc.poll() is not None:
            break
        time.sleep(0.2)
        out.seek(0)
        for line in out.read().splitlines():
            key, _, value = line.strip().rpartition(" ")
            if key.strip() in ("base URL", "client id", "client secret"):
                info[key.strip()] = value
    if "client secret" not in info:
        proc.kill()
        out.seek(0)
        raise AssertionError(f"the emulator did not start:\n{out.read()}")
    return proc, info


def _stop(proc: subprocess.Popen[Any], group: bool = False) -> None:
    """SIGTERM (to the process group the test started, when ``group``), then SIGKILL."""
    if proc.poll() is None:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait(timeout=10)
    if group:
        with contextlib.suppress(ProcessLookupError):  # workers the scheduler left behind
            os.killpg(proc.pid, signal.SIGKILL)


def _airflow(venv: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
    )
    assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _rows(database: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = psycopg2.connect(_database_dsn(database), connect_timeout=10)
    with conn, conn.cursor() as cur:
        cur.execute(query, params)
        names = [d[0] for d in cur.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.close()
    return rows


def _task_logs(home: Path) -> str:
    logs = sorted((home / "logs").rglob("*.log"))
    return "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in logs if "dag_id=" in str(p))


@pytest.fixture(scope="module")
def airflow_run(
    postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowRun]:
    """One ``caspio_sync`` run under ``airflow scheduler`` with the LocalExecutor."""
    venv = _airflow_venv()
    tmp = tmp_path_factory.mktemp("airflow")
    home, dags = tmp / "airflow_home", tmp / "dags"
    dags.mkdir()
    for name in ("caspio_dag.py", "caspio_tasks.py"):  # as a deployment copies them
        shutil.copy(DEPLOY / name, dags / name)
    suffix = uuid.uuid4().hex[:10]
    database, schema = f"airflow_test_{suffix}", f"caspio_airflow_{suffix}"
    emulator, info = _start_emulator(tmp)
    _admin_sql(f'CREATE DATABASE "{database}"')
    scheduler: subprocess.Popen[bytes] | None = None
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _database_dsn(database, "postgresql+psycopg2"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the run the test triggers
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__WEBSERVER__SECRET_KEY": uuid.uuid4().hex,
            "SOURCES__CASPIO__CREDENTIALS__CLIENT_ID": info["client id"],
            "SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET": info["client secret"],
            "SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL": info["base URL"],
            "SOURCES__CASPIO__PAGE_SIZE": str(PAGE_SIZE),
            "SOURCES__CASPIO__TOKEN_CACHE_DIR": str(tmp / "token_cache"),
            "DESTINATION__POSTGRES__CREDENTIALS": POSTGRES_DSN,
            "CASPIO_DATASET": schema,
            "DLT_DATA_DIR": str(tmp / "dlt_data"),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
        }
        _airflow(venv, env, "db", "migrate")
        _airflow(venv, env, "dags", "reserialize")
        errors = _airflow(venv, env, "dags", "list-import-errors")
        assert "caspio_dag.py" not in errors, errors
        run_id = f"test_{suffix}"
        _airflow(venv, env, "dags", "trigger", "caspio_sync", "--run-id", run_id)
        started = time.monotonic()
        with (tmp / "scheduler.out").open("wb") as out:
            scheduler = subprocess.Popen(
                [str(venv / "bin" / "airflow"), "scheduler"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the test stops it and its workers
            )
        state = "queued"
        while time.monotonic() - started < RUN_DEADLINE:
            time.sleep(1)
            runs = _rows(database, "select state from dag_run where run_id = %s", (run_id,))
            state = str(runs[0]["state"]) if runs else "missing"
            retrying = _rows(
                database,
                "select task_id from task_instance where run_id = %s and state in "
                "('up_for_retry', 'failed', 'upstream_failed')",
                (run_id,),
            )
            if state in ("success", "failed") or retrying or scheduler.poll() is not None:
                break
        seconds = time.monotonic() - started
        _stop(scheduler, group=True)
        tis = _rows(
            database,
            "select task_id, map_index, state, start_date, end_date, pid, try_number "
            "from task_instance where run_id = %s order by task_id, map_index",
            (run_id,),
        )
        if state != "success":
            scheduler_out = (tmp / "scheduler.out").read_text()[-4000:]
            raise AssertionError(
                f"DAG run {state} after {seconds:.0f} s: {tis}\n{_task_logs(home)}\n"
                f"--- scheduler\n{scheduler_out}"
            )
        log = requests.get(f"{info['base URL']}/__emulator__/log", timeout=30).json()["log"]
        record = tmp / "run.json"  # for a look after a failure
        record.write_text(json.dumps({"log": log, "task_instances": tis}, default=str))
        # the tests read the API with the limit lifted: their reads are not the run's pace
        requests.post(
            f"{info['base URL']}/__emulator__/config", json={"rate_limit": None}, timeout=30
        ).raise_for_status()
        yield AirflowRun(
            dag_state=state,
            task_instances=tis,
            log=log,
            emulator_url=info["base URL"],
            client_id=info["client id"],
            client_secret=info["client secret"],
            schema=schema,
            seconds=seconds,
        )
    finally:
        if scheduler is not None:
            _stop(scheduler, group=True)
        _stop(emulator)
        _admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        drop_dataset(POSTGRES_DSN, schema)


def _max_overlap(intervals: list[tuple[dt.datetime, dt.datetime]]) -> int:
    """The most intervals open at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = open_now = 0
    for _, step in events:
        open_now += step
        best = max(best, open_now)
    return best


def test_table_tasks_ran_in_parallel_processes(airflow_run: AirflowRun) -> None:
    tis = airflow_run.task_instances
    assert {t["state"] for t in tis} == {"success"}, tis
    synced = [t for t in tis if t["task_id"] == "sync_table"]
    assert sorted(t["map_index"] for t in synced) == list(range(len(TABLES)))
    intervals = [(t["start_date"], t["end_date"]) for t in synced]
    overlap = _max_overlap(intervals)
    pids = {t["pid"] for t in synced}
    print(
        f"\nairflow: run {airflow_run.seconds:.0f} s, {len(synced)} sync_table tasks in "
        f"{len(pids)} processes, at most {overlap} at once"
    )
    assert overlap >= 2, f"the table tasks never overlapped: {intervals}"
    assert len(pids) >= 2, f"the table tasks ran in one process: {pids}"

    # the API saw it too: calls of different tables interleaved
    table_of = [_table_of(e["path"]) for e in airflow_run.log]
    sequence = [t for t in table_of if t]
    switches = sum(1 for a, b in zip(sequence, sequence[1:], strict=False) if a != b)
    assert switches > len(TABLES), f"table calls did not interleave: {sequence}"


def _table_of(path: str) -> str | None:
    """``Orders`` for ``/integrations/rest/v3/tables/Orders/records``."""
    parts = path.strip("/").split("/")
    i = parts.index("tables") if "tables" in parts else -1
    return parts[i + 1] if 0 <= i < len(parts) - 1 else None


def _api_get(run: AirflowRun, token: str, path: str, **params: Any) -> Any:
    answer = requests.get(
        f"{run.emulator_url}/integrations/rest/v3/{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["Result"]


def _api_rows(run: AirflowRun, token: str, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        got = _api_get(
            run,
            token,
            f"tables/{table}/records",
            **{"q.pageSize": 1000, "q.pageNumber": page, "q.orderBy": "PK_ID"},
        )
        rows += got
        if len(got) < 1000:
            return rows
        page += 1


def test_every_table_equals_the_api(airflow_run: AirflowRun) -> None:
    token = requests.post(
        f"{airflow_run.emulator_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": airflow_run.client_id,
            "client_secret": airflow_run.client_secret,
        },
        timeout=30,
    ).json()["access_token"]
    for table in TABLES:
        fields = {f["Name"]: f for f in _api_get(airflow_run, token, f"tables/{table}/fields")}
        loaded_fields = {
            n: f for n, f in fields.items() if f["Type"] != "PASSWORD" and n != "PK_ID"
        }
        wire = {r["PK_ID"]: r for r in _api_rows(airflow_run, token, table)}
        assert len(wire) == ROWS, table
        with psycopg2.connect(POSTGRES_DSN, connect_timeout=10) as conn, conn.cursor() as cur:
            cur.execute(
                "select column_name from information_schema.columns where table_schema = %s "
                "and table_name = %s and column_name not like '\\_dlt%%'",
                [airflow_run.schema, table.lower()],
            )
            columns = sorted(row[0] for row in cur.fetchall())
            assert columns == sorted(["pk_id", *(n.lower() for n in loaded_fields)]), table
            names = ", ".join(f'"{c}"' for c in columns)
            cur.execute(f'select {names} from "{airflow_run.schema}"."{table.lower()}"')
            got = {row[columns.index("pk_id")]: dict(zip(columns, row, strict=True)) for row in cur}
        conn.close()
        assert set(got) == set(wire), f"{table}: PK_IDs differ"
        for pk, row in wire.items():
            for name, value in row.items():
                if name != "PK_ID" and name not in loaded_fields:
                    continue
                want = wire_oracle.expected(loaded_fields.get(name), value)
                have = wire_oracle.loaded(got[pk][name.lower()])
                assert wire_oracle.same(want, have), (table, pk, name, value, have, want)


@dataclasses.dataclass
class Stall:
    """The refusals from one full window until the account answered again."""

    in_flight: int  # refusals of calls already sent when the window filled
    probes: list[str]  # the requests refused after those, in order

    def line(self) -> str:
        return f"{self.in_flight} in flight + {len(self.probes)} probes"


@dataclasses.dataclass
class Pace:
    """The run's calls as the account saw them."""

    answered: int
    refused: int
    stalls: list[Stall]
    most_in_window: int  # most answered calls in any window of the limit's period
    span: float  # seconds from the first call to the last
    after_first_refusal: float  # answered calls per second from the first refusal on

    def line(self) -> str:
        limit, period = RATE_LIMIT
        stalls = "; ".join(s.line() for s in self.stalls) or "none"
        return (
            f"pace: {self.answered} calls answered, {self.refused} refused in {self.span:.0f} s "
            f"(429 stalls: {stalls}); at most {self.most_in_window} answered in any "
            f"{period:.0f} s window (limit {limit}); {self.after_first_refusal:.1f} calls/s "
            f"after the first 429 (the window allows {limit / period:.1f})"
        )


def _stalls(calls: list[tuple[float, int, str]]) -> list[Stall]:
    """Split the refusals into stalls: a stall begins with a refusal and ends with the first
    call answered after its in-flight refusals (a call that came through once the window had
    room again: the probe's, or a paced call's)."""
    stalls: list[Stall] = []
    first: float | None = None
    for arrived, status, request in calls:
        if status != 429:
            if first is not None and arrived > first + IN_FLIGHT_SECONDS:
                first = None
            continue
        if first is None:
            first = arrived
            stalls.append(Stall(in_flight=0, probes=[]))
        if arrived <= first + IN_FLIGHT_SECONDS:
            stalls[-1].in_flight += 1
        else:
            stalls[-1].probes.append(request)
    return stalls


def _pace(log: list[dict[str, Any]]) -> Pace:
    """A call counts at its arrival (logged time less its duration); windows 0.1 s short of
    the limit's period absorb the gap between arrival and the emulator's admission."""
    calls = sorted(
        (e["time"] - e["duration_ms"] / 1000, e["status"], f"{e['path']}?{e['query']}") for e in log
    )
    arrivals = [t for t, status, _ in calls if status != 429]
    refusals = [t for t, status, _ in calls if status == 429]
    period = RATE_LIMIT[1] - 0.1
    most = max(
        (bisect.bisect_left(arrivals, t + period) - i for i, t in enumerate(arrivals)), default=0
    )
    first = refusals[0] if refusals else arrivals[-1]
    later = [t for t in arrivals if t >= first]
    rate = len(later) / (later[-1] - first) if len(later) > 1 and later[-1] > first else 0.0
    return Pace(
        answered=len(arrivals),
        refused=len(refusals),
        stalls=_stalls(calls),
        most_in_window=most,
        span=calls[-1][0] - calls[0][0],
        after_first_refusal=rate,
    )


def test_the_run_kept_the_accounts_pace(airflow_run: AirflowRun) -> None:
    """No window ever answered more than the limit, and the run found the window full without
    a retry storm (task processes retrying on their own would have more calls refused than
    answered): refusals stay under the answered calls (measured: 25 to 40% of them)."""
    pace = _pace(airflow_run.log)
    print(f"\n{pace.line()}")
    limit, period = RATE_LIMIT
    assert pace.answered > limit, "the run fit in one window: the limit never bound"
    assert pace.refused > 0, "no call was refused: the limit never bound"
    assert pace.most_in_window <= limit, pace.line()
    assert pace.refused < pace.answered, pace.line()


def test_one_prober_for_the_account(airflow_run: AirflowRun) -> None:
    """Once the window is full, the task processes wait together and one of them probes: in
    every stall, the refusals after those already in flight are one caller's backoff (one
    request, sent again), not one per process. The first 429 only opens the account's
    episode, the second teaches its pace (``pace_estimate.py``): after that, no more stalls."""
    pace = _pace(airflow_run.log)
    print(f"\n{pace.line()}")
    assert 1 <= len(pace.stalls) <= MAX_STALLS, pace.line()
    for stall in pace.stalls:
        assert len(stall.probes) <= MAX_PROBES, pace.line()
        assert len(set(stall.probes)) <= 1, f"several callers probed: {stall.probes}"


def _entry(arrived: float, status: int, table: str) -> dict[str, Any]:
    """One emulator log entry for the oracle's own test: arrived at ``arrived`` s."""
    return {
        "time": arrived + 0.2,
        "duration_ms": 200.0,
        "status": status,
        "path": f"/integrations/rest/v3/tables/{table}/records",
        "query": "q.pageNumber=1",
    }


def test_the_stall_oracle_tells_one_prober_from_several() -> None:
    """Needs no Airflow: the split into stalls on hand-made logs, so that the checks above
    cannot pass on a run where every process probed."""
    one = [_entry(0.0, 200, "A"), _entry(1.0, 429, "A"), _entry(1.1, 429, "B")]
    one += [_entry(2.0, 429, "A"), _entry(4.0, 429, "A"), _entry(8.0, 200, "A")]
    one += [_entry(8.2, 200, "B"), _entry(9.0, 429, "B"), _entry(10.0, 429, "B")]
    one += [_entry(12.0, 200, "B")]
    stalls = _pace(one).stalls
    assert [(s.in_flight, len(s.probes)) for s in stalls] == [(2, 2), (1, 1)]
    assert all(len(set(s.probes)) == 1 for s in stalls)

    several = [_entry(0.0, 200, "A"), _entry(1.0, 429, "A")]
    several += [_entry(2.0, 429, "A"), _entry(2.05, 429, "B"), _entry(6.0, 200, "A")]
    (stall,) = _pace(several).stalls
    assert (stall.in_flight, len(set(stall.probes))) == (1, 2)
