"""run_sync tunes the process for a bulk sync (rarer GC passes, malloc for Arrow, a bounded
DuckDB pool) and must hand the process back as it found it: a notebook or scheduler process
goes on after the sync."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from typing import Any

import pyarrow as pa
import pytest

from pipelines import duckdb_pool
from pipelines.caspio_pipeline import _fewer_gc_passes, _malloc_for_arrow, run_sync
from pipelines.duckdb_pool import duckdb_credentials
from sources.caspio import CaspioCredentials


def test_arrow_allocates_from_malloc_during_the_block_only() -> None:
    before = pa.default_memory_pool().backend_name
    with _malloc_for_arrow():
        assert pa.default_memory_pool().backend_name == "system"
        kept = pa.array(["made inside"])
    assert pa.default_memory_pool().backend_name == before
    assert kept.to_pylist() == ["made inside"]  # buffers keep the pool they came from
    with pytest.raises(RuntimeError), _malloc_for_arrow():
        raise RuntimeError("the sync failed")
    assert pa.default_memory_pool().backend_name == before


def test_gc_threshold_is_raised_during_the_block_only() -> None:
    before = gc.get_threshold()
    with _fewer_gc_passes():
        assert gc.get_threshold()[0] >= 50_000
    assert gc.get_threshold() == before


def test_a_sync_restores_both(caspio_emulator: Any) -> None:
    pool, threshold = pa.default_memory_pool().backend_name, gc.get_threshold()
    credentials = CaspioCredentials(
        client_id=caspio_emulator.client_id,
        client_secret=caspio_emulator.client_secret,
        integration_url=caspio_emulator.base_url,
    )
    report = run_sync(duckdb_file="settings.duckdb", credentials=credentials, tables=["Customers"])
    assert report.total_rows == len(caspio_emulator.table_rows("Customers"))
    assert (pa.default_memory_pool().backend_name, gc.get_threshold()) == (pool, threshold)


def test_duckdb_global_config_from_an_env_var_replaces_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dlt's env convention gives a JSON object as text; it must be read as the dict it is."""
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", raising=False)
    assert duckdb_credentials("x.duckdb").global_config == {
        "memory_limit": duckdb_pool.DUCKDB_MEMORY_LIMITS[0],
        "preserve_insertion_order": False,
        "threads": 1,
    }
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG",
        '{"memory_limit": "96MB", "threads": 1}',
    )
    assert duckdb_credentials("x.duckdb").global_config == {"memory_limit": "96MB", "threads": 1}


def _threads_after(code: str, **env: str) -> int:
    """OS threads of a fresh interpreter once ``code`` ran, with OPENBLAS_NUM_THREADS as given."""
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport os\nprint(len(os.listdir('/proc/self/task')))"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_importing_the_pipelines_starts_no_blas_threads() -> None:
    """pyarrow imports numpy, whose OpenBLAS starts spinning threads unless told otherwise."""
    quiet = _threads_after("import pyarrow", OPENBLAS_NUM_THREADS="1")
    if _threads_after("import pyarrow") == quiet:
        pytest.skip("OpenBLAS starts no threads of its own on this machine (one core?)")
    assert _threads_after("import pipelines.caspio_pipeline") == quiet
    # a value the user set is theirs
    kept = "import os, pipelines.caspio_pipeline\nassert os.environ['OPENBLAS_NUM_THREADS'] == '2'"
    assert _threads_after(kept, OPENBLAS_NUM_THREADS="2") > quiet


def test_our_executables_exit_with_every_object_frozen() -> None:
    """Shutdown's full collections walk every object the collector has not been told to skip."""
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 1000))\n"
        "import pipelines.caspio_pipeline\n"
        "from pipelines.process import exit_process\n"
        "exit_process(3)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout.split()) == (3, ["frozen", "True"]), done.stderr


def test_caspio_sync_ends_through_exit_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import entry_points

    from pipelines import cli

    (script,) = entry_points(group="console_scripts", name="caspio-sync")
    assert script.value == "pipelines.cli:run_as_process"
    ended: list[int] = []
    monkeypatch.setattr(cli, "main", lambda: 4)
    monkeypatch.setattr(cli, "exit_process", ended.append)
    cli.run_as_process()
    assert ended == [4]
