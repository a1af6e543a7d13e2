"""`caspio-sync`: parse arguments, call `pipelines`, turn every failure into one clear line.

Exit codes: 0 success, 1 a sync/check failure (the message names the problem and the fix),
2 bad command-line usage (argparse), 3 `run --max-calls` stopped at the budget (the tables
finished so far are loaded; run again to resume), so a scheduler can tell "partial by design"
from failure. `--debug` shows the traceback and DEBUG logs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from . import commands
from .errors import describe_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caspio-sync",
        description="Sync Caspio tables and views into DuckDB or any dlt destination.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and DEBUG logs")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="sync all tables and views (or --tables) into a destination")
    _add_target_args(run)
    run.add_argument("--full-refresh", action="store_true", help="drop state and reload all")
    run.add_argument(
        "--max-calls",
        type=int,
        default=None,
        metavar="N",
        help="spend at most N Caspio API calls (tables sync one by one; stop before call N+1)",
    )
    run.add_argument(
        "--no-progress", action="store_true", help="no progress output even on a terminal"
    )

    check = sub.add_parser(
        "check", help="check credentials, then list every table and view with its row count"
    )
    check.add_argument("--tables", nargs="+", metavar="NAME", help="names or glob patterns")

    plan = sub.add_parser(
        "plan", help="print the API calls a sync would spend, per table and in total"
    )
    _add_target_args(plan)

    reconcile = sub.add_parser(
        "reconcile",
        help="remove (or mark) destination rows deleted in Caspio; reads every PK_ID",
    )
    _add_target_args(reconcile)
    reconcile.add_argument(
        "--mode",
        choices=["delete", "mark"],
        default=None,
        help="override table_options.<T>.deletes for every table",
    )

    demo = sub.add_parser(
        "demo", help="start the local Caspio emulator with its demo account and sync it to DuckDB"
    )
    demo.add_argument("--duckdb-file", default="caspio_demo.duckdb")
    return parser


def _add_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", nargs="+", metavar="NAME", help="names or glob patterns")
    parser.add_argument(
        "--destination", default="duckdb", help="any dlt destination name (default: duckdb)"
    )
    parser.add_argument("--dataset", default="caspio", help="dataset (schema) name")
    parser.add_argument("--pipeline-name", default="caspio")
    parser.add_argument(
        "--duckdb-file", default=None, help="DuckDB file (default: caspio_sync.duckdb)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handlers = {
        "run": commands.run,
        "check": commands.check,
        "plan": commands.plan,
        "reconcile": commands.reconcile,
        "demo": commands.demo,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("caspio-sync: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(f"caspio-sync: error: {describe_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
