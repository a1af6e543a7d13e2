"""One sync in a child process, for the SIGKILL tests: `python child_sync.py WORKDIR OPTIONS_JSON`.

Credentials come from the SOURCES__CASPIO__CREDENTIALS__* environment, as for a scheduled job.
With CHILD_MARK_LOAD=1 the child announces each DuckDB copy job on stdout ("LOAD_COPY_START
<table>" / "LOAD_COPY_DONE <table>") and pauses 2 s before and after the real copy, so the
parent can SIGKILL it at an exact point of the load step: a job started but not copied, or
copied into DuckDB but not yet marked complete in the load package. The copy itself is dlt's
own, into the real database file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _say(line: str) -> None:
    """One whole line in one write: dlt runs copy jobs in parallel threads, and print()'s
    separate write of the newline let two markers interleave on one line."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _mark_load_jobs() -> None:
    from dlt.destinations.impl.duckdb import duck

    original = duck.DuckDbCopyJob.run

    def announced_run(self: duck.DuckDbCopyJob) -> None:
        table = self.load_table_name
        _say(f"LOAD_COPY_START {table}")
        time.sleep(2)
        original(self)
        _say(f"LOAD_COPY_DONE {table}")
        time.sleep(2)

    duck.DuckDbCopyJob.run = announced_run  # type: ignore[method-assign]


def main() -> int:
    workdir = Path(sys.argv[1])
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if os.environ.get("CHILD_MARK_LOAD") == "1":
        _mark_load_jobs()
    from pipelines.caspio_pipeline import run_sync

    _say("SYNC_START")
    report = run_sync(
        destination="duckdb",
        duckdb_file=str(workdir / "sync.duckdb"),
        pipelines_dir=str(workdir / "pipelines"),
        source_options=options or None,
    )
    _say(f"SYNC_DONE {report.total_rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
