"""The `caspio-sync` subcommands: each takes parsed arguments, prints, returns an exit code."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.pipeline import get_dlt_pipelines_dir

from sources.caspio import exception_chain

from . import caspio_pipeline, interrupts
from .budget import run_with_budget
from .checks import format_check, run_check
from .plan import run_plan
from .progress import Mode, RunMonitor
from .reconcile import run_reconcile
from .redact import scrub_files
from .status import run_status

EXIT_BUDGET_REACHED = 3


def _dataset(args: argparse.Namespace) -> str:
    """The dataset as the destination will name it (``my-data`` -> ``my_data``), so dlt has
    nothing to rename (and warn about) and the report names the schema that holds the data."""
    name = str(NamingConvention().normalize_identifier(args.dataset))
    if name != args.dataset and not args.quiet:
        print(
            f"caspio-sync: dataset {args.dataset!r} is written as {name!r} (the name a schema "
            "can have); pass --dataset " + name + " to silence this",
            file=sys.stderr,
        )
    return name


def _target(args: argparse.Namespace) -> dict[str, Any]:
    """Where run, plan and reconcile point: they must address the same pipeline and dataset."""
    return {
        "destination": args.destination,
        "tables": args.tables,
        "dataset_name": _dataset(args),
        "pipeline_name": args.pipeline_name,
        "duckdb_file": args.duckdb_file,
    }


def monitor(args: argparse.Namespace) -> RunMonitor:
    """Progress as the terminal (or the log reading stderr) wants it."""
    quiet = args.quiet or getattr(args, "no_progress", False)
    mode: Mode = "quiet" if quiet else "live" if sys.stderr.isatty() else "log"
    return RunMonitor(sys.stderr, mode, getattr(args, "progress_interval", 10.0))


def run(args: argparse.Namespace) -> int:
    if args.max_calls is not None and args.max_calls < 1:
        print("caspio-sync: error: --max-calls must be at least 1", file=sys.stderr)
        return 2
    if args.progress_interval <= 0:
        print("caspio-sync: error: --progress-interval must be above 0", file=sys.stderr)
        return 2
    progress = monitor(args)
    report: caspio_pipeline.SyncReport
    try:
        if args.max_calls is not None:
            report = run_with_budget(args.max_calls, **_target(args), progress=progress)
        else:
            report = caspio_pipeline.run_sync(
                **_target(args), full_refresh=args.full_refresh, progress=progress
            )
    finally:
        progress.close()
    print(report.summary())
    stopped = getattr(report, "stopped", None)
    if stopped is not None:
        print(f"caspio-sync: {stopped}", file=sys.stderr)
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


def status(args: argparse.Namespace) -> int:
    """Each table's last sync from the pipeline's folder and the destination; no API call."""
    result = run_status(
        destination=args.destination,
        dataset_name=_dataset(args),
        pipeline_name=args.pipeline_name,
        duckdb_file=args.duckdb_file,
    )
    print(result.as_json() if args.json else result.summary())
    return 0


def webhooks(args: argparse.Namespace) -> int:
    """Install, show or remove the change-capture webhook (the secret is never printed)."""
    from .webhooks import run_webhooks

    print(run_webhooks(args.action, args.url, args.tables, args.events).summary())
    return 0


def listen(args: argparse.Namespace) -> int:
    """Journal webhook deliveries until stopped."""
    from .listener import run_listen

    return run_listen(args.host, args.port, args.path)


def usage(args: argparse.Namespace) -> int:
    """The quota period's calls from the call ledger (local and destination); no API call."""
    from .usage import run_usage

    result = run_usage(
        destination=args.destination,
        dataset_name=_dataset(args),
        pipeline_name=args.pipeline_name,
        duckdb_file=args.duckdb_file,
        account=args.account,
    )
    print(result.as_json() if args.json else result.summary())
    return 0


def demo(args: argparse.Namespace) -> int:
    """Start the emulator's demo account in-process and sync it: no Caspio account needed."""
    from caspio_emulator import DEMO_DATASET, Emulator
    from sources.caspio import CaspioCredentials

    say = (lambda *_: None) if args.quiet else print
    with Emulator(dataset=DEMO_DATASET) as emulator:
        say(f"Caspio emulator with the demo account at {emulator.base_url}")
        credentials = CaspioCredentials(
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
            integration_url=emulator.base_url,
        ).resolve()  # resolved: SOURCES__CASPIO__CREDENTIALS__* must not point elsewhere
        progress = monitor(args)
        try:
            report = caspio_pipeline.run_sync(
                destination="duckdb",
                duckdb_file=args.duckdb_file,
                pipeline_name="caspio_demo",
                full_refresh=True,
                credentials=credentials,
                # the emulator's tokens die with it: caching one on disk would only leave litter
                source_options={"token_cache": False},
                progress=progress,
            )
        finally:
            progress.close()
        print(report.summary())
        say(f"Emulator counted {emulator.calls:,} API calls (token calls included).")
    say(
        f"Explore {args.duckdb_file} with notebooks/revenue_by_segment.ipynb, or: python -c "
        f"\"import duckdb; print(duckdb.connect('{args.duckdb_file}')"
        f".sql('select * from caspio.orders limit 5'))\""
    )
    return 0


def interrupted_line(signum: int, exc: BaseException | None) -> str:
    """The one line an interrupted command ends with: what was kept, what the next run does."""
    step = (
        next((getattr(e, "step", None) for e in exception_chain(exc) if hasattr(e, "step")), None)
        if exc is not None
        else None
    )
    what = interrupts.NAMES.get(signum, f"signal {signum}")
    if exc is None:
        kept = "this run had finished: everything it read is loaded"
    elif step in ("normalize", "load"):
        kept = (
            f"stopped during {step}: the pages read are kept in a load package, which the next "
            "run loads first (rows already loaded stay); then it resumes"
        )
    elif step in ("extract", "sync", "run"):
        kept = (
            "stopped while reading: nothing of this run was loaded, tables loaded by earlier "
            "runs are unchanged and the next run resumes from their cursor marks"
        )
    else:
        kept = "stopped before anything was loaded; the next run starts from the last one"
    return f"caspio-sync: interrupted by {what}: {kept}"


def scrub(args: argparse.Namespace) -> None:
    """Mask any secret dlt wrote into the pipeline's folder (its trace repeats error texts,
    malformed connection strings included)."""
    name = "caspio_demo" if args.command == "demo" else getattr(args, "pipeline_name", None)
    if name:
        with contextlib.suppress(Exception):  # e.g. a config file dlt cannot read at all
            scrub_files(Path(get_dlt_pipelines_dir()) / name)
