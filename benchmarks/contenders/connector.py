"""This connector: `pipelines.caspio_pipeline.run_sync` (what `caspio-sync run` calls) into DuckDB.

The working dir (`--out`) holds the dlt pipelines dir and the DuckDB file, so running twice on
the same dir is an incremental run, exactly as a scheduler would run it. The token cache goes
where the harness points `SOURCES__CASPIO__TOKEN_CACHE_DIR` (shared across repeats, so only the
first run of the session may spend a token call), never into the user's home. Everything
else is the connector's defaults: no tuning a user would not get out of the box.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from pipelines.caspio_pipeline import run_sync
from pipelines.process import exit_process
from sources.caspio import CaspioClient, CaspioCredentials

from .common import emit, parse_args, step_seconds


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, __doc__ or "")
    started = time.perf_counter()
    credentials = CaspioCredentials(
        client_id=args.client_id,
        client_secret=args.client_secret,
        integration_url=args.base_url,
    )
    client = CaspioClient(
        credentials, token_cache_dir=os.environ.get("SOURCES__CASPIO__TOKEN_CACHE_DIR")
    )
    db_file = args.out / "connector.duckdb"
    report = run_sync(
        destination="duckdb",
        tables=args.tables,
        dataset_name="caspio",
        pipeline_name="bench_connector",
        client=client,
        duckdb_file=str(db_file),
        pipelines_dir=str(args.out / "pipelines"),
    )
    emit(
        "connector",
        report.total_rows,
        started,
        db_file=str(db_file),
        dataset="caspio",
        self_reported_calls=report.api_calls,
        self_reported_token_calls=report.token_calls,
        retries=report.retries,
        steps=step_seconds(getattr(report.load_info, "pipeline", None)),
    )


if __name__ == "__main__":
    main()
    exit_process(0)  # as the `caspio-sync` executable ends
