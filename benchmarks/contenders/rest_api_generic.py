"""dlt's generic `rest_api` source, configured for Caspio the way dlt's docs suggest.

This is what a dlt user writes today without a Caspio connector: `OAuth2ClientCredentials`
against `/oauth/token` (client id and secret in the form body), a `PageNumberPaginator`
starting at page 1 on `q.pageNumber` with no total (it stops at the first empty page),
`data_selector="Result"`, `q.pageSize=1000`, and an incremental cursor bound into `q.where`
through the `{incremental.start_value}` placeholder, merged on `PK_ID`. `q.orderBy=PK_ID` is
added because page-number paging without it is not deterministic. Everything else is dlt's
default: DuckDB's `insert_values` file format, resources extracted one after another
(`rest_api_parquet` is the same source as a user who tunes it configures it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import dlt
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from dlt.sources.rest_api import rest_api_source

from .common import ContenderArgs, emit, parse_args, step_seconds

INITIAL_CURSOR = "1900-01-01T00:00:00"


def build_config(args: ContenderArgs, parallelized: bool = False) -> dict[str, Any]:
    """The `RESTAPIConfig` dict: one resource per table (`parallelized`: extracted together)."""
    resources: list[dict[str, Any]] = []
    for table in args.tables:
        params: dict[str, Any] = {"q.orderBy": "PK_ID"}
        endpoint: dict[str, Any] = {"path": f"tables/{table}/records", "params": params}
        if args.cursor_field:
            params["q.where"] = f"{args.cursor_field} >= '{{incremental.start_value}}'"
            endpoint["incremental"] = {
                "cursor_path": args.cursor_field,
                "initial_value": INITIAL_CURSOR,
            }
        resource: dict[str, Any] = {"name": table.lower(), "endpoint": endpoint}
        if parallelized:
            resource["parallelized"] = True
        resources.append(resource)
    return {
        "client": {
            "base_url": args.v3_url + "/",
            "auth": OAuth2ClientCredentials(
                access_token_url=args.token_url,
                client_id=args.client_id,
                client_secret=args.client_secret,
            ),
            "paginator": PageNumberPaginator(
                base_page=1, page_param="q.pageNumber", total_path=None
            ),
        },
        "resource_defaults": {
            "primary_key": "PK_ID",
            "write_disposition": "merge",
            "endpoint": {"data_selector": "Result", "params": {"q.pageSize": args.page_size}},
        },
        "resources": resources,
    }


def run(argv: Sequence[str] | None, contender: str, tuned: bool) -> None:
    """One sync; `tuned`: Parquet files and parallelized resources, else dlt's defaults."""
    args = parse_args(argv, __doc__ or "")
    started = time.perf_counter()
    db_file = args.out / "rest_api.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="bench_rest_api",
        destination=dlt.destinations.duckdb(credentials=str(db_file)),
        dataset_name="caspio",
        pipelines_dir=str(args.out / "pipelines"),
    )
    source = rest_api_source(build_config(args, parallelized=tuned))  # type: ignore[arg-type]
    if tuned:
        pipeline.run(source, loader_file_format="parquet")
    else:
        pipeline.run(source)
    trace = pipeline.last_trace
    counts = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    loaded = sum(n for table, n in counts.items() if not table.startswith("_dlt"))
    emit(
        contender,
        loaded,
        started,
        db_file=str(db_file),
        dataset="caspio",
        steps=step_seconds(pipeline),
    )


def main(argv: Sequence[str] | None = None) -> None:
    run(argv, "rest_api_generic", tuned=False)


if __name__ == "__main__":
    main()
