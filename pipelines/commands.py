"""The `caspio-sync` subcommands: each takes parsed arguments, prints, returns an exit code."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import caspio_pipeline
from .budget import run_with_budget
from .checks import format_check, run_check
from .plan import run_plan
from .reconcile import run_reconcile

EXIT_BUDGET_REACHED = 3


def _target(args: argparse.Namespace) -> dict[str, Any]:
    """Where run, plan and reconcile point: they must address the same pipeline and dataset."""
    return {
        "destination": args.destination,
        "tables": args.tables,
        "dataset_name": args.dataset,
        "pipeline_name": args.pipeline_name,
        "duckdb_file": args.duckdb_file,
    }


def run(args: argparse.Namespace) -> int:
    progress = None if args.no_progress or not sys.stderr.isatty() else "log"
    if args.max_calls is not None:
        return _run_budgeted(args, progress)
    report = caspio_pipeline.run_sync(
        **_target(args), full_refresh=args.full_refresh, progress=progress
    )
    print(report.summary())
    return 0


def _run_budgeted(args: argparse.Namespace, progress: str | None) -> int:
    if args.max_calls < 1:
        print("caspio-sync: error: --max-calls must be at least 1", file=sys.stderr)
        return 2
    report = run_with_budget(args.max_calls, **_target(args), progress=progress)
    print(report.summary())
    if report.stopped is not None:
        print(f"caspio-sync: {report.stopped}", file=sys.stderr)
        return EXIT_BUDGET_REACHED
    return 0


def plan(args: argparse.Namespace) -> int:
    result = run_plan(**_target(args))
    print(result.summary())
    return 0


def reconcile(args: argparse.Namespace) -> int:
    report = run_reconcile(**_target(args), mode=args.mode)
    print(report.summary())
    return 0


def check(args: argparse.Namespace) -> int:
    result = run_check(tables=args.tables)
    print(format_check(result))
    return 0 if result.ok else 1


def demo(args: argparse.Namespace) -> int:
    """Start the emulator's demo account in-process and sync it: no Caspio account needed."""
    from caspio_emulator import DEMO_DATASET, Emulator
    from sources.caspio import CaspioCredentials

    with Emulator(dataset=DEMO_DATASET) as emulator:
        print(f"Caspio emulator with the demo account at {emulator.base_url}")
        credentials = CaspioCredentials(
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
            integration_url=emulator.base_url,
        )
        report = caspio_pipeline.run_sync(
            destination="duckdb",
            duckdb_file=args.duckdb_file,
            pipeline_name="caspio_demo",
            full_refresh=True,
            credentials=credentials,
            # the emulator's tokens die with it: caching one on disk would only leave litter
            source_options={"token_cache": False},
        )
        print(report.summary())
        print(f"Emulator counted {emulator.calls:,} API calls (token calls included).")
    print(
        f"Explore {args.duckdb_file} with notebooks/revenue_by_segment.ipynb, or: python -c "
        f"\"import duckdb; print(duckdb.connect('{args.duckdb_file}')"
        f".sql('select * from caspio.orders limit 5'))\""
    )
    return 0
