"""A DuckDB sync never imports pandas, and nothing imports it while pages are extracted.

Why: pyarrow imports pandas on its first ``pa.array()`` of Python values, in whatever thread
converts a page, while dlt's extract loop reads ``sys.modules["pandas"].DataFrame`` for every
item; a half-imported pandas has none, and syncs of the demo account failed with "partially
initialized module 'pandas'". DuckDB 1.x imported pandas itself on its first query with
parameters, on the main thread before extraction, and that import was allowed; DuckDB 2 does
not, so now no import of pandas is allowed at all (it also costs a sync about 38 MB of peak
memory). The demo account has odd values (pages that take the dict path), LIST fields, files and
metadata, so it walks every conversion path. The check runs in a fresh interpreter: this one
has pandas loaded. A warehouse sync does import pandas (dlt's CSV writer for PostgreSQL calls
``pyarrow.array``): whole, when the sync is opened, before anything is extracted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = """
import json, sys, threading, traceback
from pipelines.caspio_pipeline import run_sync
from sources.caspio import CaspioCredentials

imports = []

class Watch:
    def find_spec(self, name, path, target=None):
        if name == "pandas" and "pandas" not in sys.modules:
            stack = traceback.extract_stack()
            importer = next(
                (f.filename for f in reversed(stack) if "importlib" not in f.filename
                 and "<" not in f.filename), "?")
            imports.append("thread " + threading.current_thread().name + ": " + importer)
        return None

sys.meta_path.insert(0, Watch())
url, cid, secret, tables, dict_path = sys.argv[1:6]
if dict_path == "1":  # every page declined by the fast decoder: the dict path converts them
    from sources.caspio.page_decoder import PageDecoder
    PageDecoder.decode = lambda self, body: None
credentials = CaspioCredentials(client_id=cid, client_secret=secret, integration_url=url)
rows = []
for _ in range(2):  # a full sync, then an incremental one
    report = run_sync(
        duckdb_file="np.duckdb", credentials=credentials, tables=json.loads(tables) or None
    )
    rows.append(report.total_rows)
print(json.dumps({"rows": rows, "pandas": imports}))
"""


REPO = Path(__file__).resolve().parents[2]


def _run(script: str, emu: Any, extra: list[str], tmp_path: Path) -> dict[str, Any]:
    """``script`` in a fresh interpreter against ``emu``; the JSON of its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update(PYTHONPATH=str(REPO), DLT_DATA_DIR=str(tmp_path / "dlt"))
    done = subprocess.run(
        [sys.executable, "-c", script, emu.base_url, emu.client_id, emu.client_secret, *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _sync_twice(
    emu: Any, tables: list[str], tmp_path: Path, dict_path: bool = False
) -> dict[str, Any]:
    return _run(SCRIPT, emu, [json.dumps(tables), "1" if dict_path else "0"], tmp_path)


def test_a_sync_of_the_demo_account_never_imports_pandas(
    caspio_emulator: Any, tmp_path: Path
) -> None:
    result = _sync_twice(caspio_emulator, [], tmp_path)
    assert result["pandas"] == []
    assert result["rows"][0] > 0


def test_a_bulk_sync_never_imports_pandas(caspio_emulator_factory: Any, tmp_path: Path) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"Big": 3500})
    assert _sync_twice(emu, ["Big"], tmp_path) == {"rows": [3500, 0], "pandas": []}


def test_pages_on_the_dict_path_never_import_pandas(
    caspio_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=None, generate={"Big": 2500})
    result = _sync_twice(emu, ["Big"], tmp_path, dict_path=True)
    assert result == {"rows": [2500, 0], "pandas": []}


WAREHOUSE_SCRIPT = (
    SCRIPT.split("url, cid, secret")[0]
    + """
import dlt
url, cid, secret, dsn, dataset = sys.argv[1:6]
credentials = CaspioCredentials(client_id=cid, client_secret=secret, integration_url=url)
report = run_sync(
    destination=dlt.destinations.postgres(credentials=dsn), dataset_name=dataset,
    pipeline_name="np_warehouse", credentials=credentials, tables=["Customers"],
)
print(json.dumps({"rows": [report.total_rows], "pandas": imports}))
"""
)


def test_a_warehouse_sync_imports_pandas_whole_before_it_extracts(
    caspio_emulator: Any, tmp_path: Path, postgres_dsn: str, postgres_dataset: str
) -> None:
    """dlt's CSV writer for PostgreSQL imports pandas (``pyarrow.array`` in its header) in the
    thread that normalizes, while another sync's extract may read the half-imported module
    (seen with three syncs in threads). So the sync imports it first, where it is opened."""
    from tests.helpers import with_password

    emu = caspio_emulator
    result = _run(WAREHOUSE_SCRIPT, emu, [with_password(postgres_dsn), postgres_dataset], tmp_path)
    assert result["rows"] == [len(emu.table_rows("Customers"))]
    # looked up, then imported: both by the opening of the sync, on the thread that runs it
    assert result["pandas"], "pandas was never imported: nothing to check"
    opened = f"thread MainThread: {REPO / 'pipelines' / 'setup.py'}"
    assert set(result["pandas"]) == {opened}, result["pandas"]
