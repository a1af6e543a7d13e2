"""`caspio-sync`: parse arguments, call `pipelines`, turn every failure into one clear line.

Exit codes: 0 success, 1 a sync/check failure (one line naming the setting and the fix), 2 bad
command-line usage (argparse), 3 `run --max-calls` or `monthly_call_budget` stopped at the
budget (the tables finished so far are loaded; run again to resume), 130 / 143 stopped by
Ctrl-C / SIGTERM (one line saying what was kept; the next run resumes). `--debug` shows the
traceback and DEBUG logs, `--quiet` only the final report and errors; both go before or after
the subcommand. Nothing printed or logged holds a secret (`redact.py`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from sources.caspio import ledger_command

from . import commands, interrupts
from .errors import check_environment, describe_error
from .process import exit_process
from .redact import install_log_redaction, redact

EXAMPLES = {
    "run": """examples:
  caspio-sync run                                  every table and view into caspio_sync.duckdb
  caspio-sync run --tables Orders 'Customer*'      names or glob patterns
  caspio-sync run --destination postgres --dataset caspio
  caspio-sync run --max-calls 500                  stop before the 501st billed API call
  caspio-sync run --tables Orders --full-refresh   reload one table from scratch""",
    "check": """examples:
  caspio-sync check                                credentials, then every object with rows
  caspio-sync check --tables 'Order*'""",
    "plan": """examples:
  caspio-sync plan                                 what `run` would spend now
  caspio-sync plan --tables Orders --destination postgres""",
    "reconcile": """examples:
  caspio-sync reconcile                            delete rows removed in Caspio
  caspio-sync reconcile --mode mark                set _caspio_deleted_at instead""",
    "status": """examples:
  caspio-sync status                               last sync, rows, calls, cursor per table
  caspio-sync status --json                        the same for a monitor
  caspio-sync status --destination postgres --dataset caspio""",
    "webhooks": """examples:
  caspio-sync webhooks install --url https://hooks.example.com/caspio
                                                   delete events of every table, to that URL
  caspio-sync webhooks install --url URL --tables 'Order*' --events delete,insert,update
  caspio-sync webhooks status                      the webhook, its events, delivery counts
  caspio-sync webhooks remove                      delete it and its stored secret""",
    "listen": """examples:
  caspio-sync listen --port 8080                   journal deliveries (path of the install URL)
  caspio-sync listen --host 0.0.0.0 --port 8080 --path /caspio""",
    "usage": """examples:
  caspio-sync usage                                calls this quota period, projection, cost
  caspio-sync usage --json                         the same for a monitor
  caspio-sync usage --destination postgres --dataset caspio""",
    "demo": """examples:
  caspio-sync demo                                 the demo account into caspio_demo.duckdb
  caspio-sync demo --duckdb-file /tmp/demo.duckdb""",
}


def _global_flags(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--debug`` and ``--quiet`` on the main parser and on every subcommand; a subcommand's
    copy has no default, so a flag given before the subcommand is not reset after it."""
    default: object = False if top else argparse.SUPPRESS
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show tracebacks and DEBUG logs (secrets stay masked)",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=default,
        help="print only the final report and errors (no progress, no warnings)",
    )


def _subcommand(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=text,
        description=text[0].upper() + text[1:] + ".",
        epilog=EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_flags(parser, top=False)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caspio-sync",
        description="Sync Caspio tables and views into DuckDB or any dlt destination.",
        epilog="examples:\n  caspio-sync demo\n  caspio-sync run --tables Orders\n"
        "  caspio-sync status\n\n`caspio-sync COMMAND --help` shows each command's flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_flags(parser, top=True)
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (COMMAND --help: its flags)",
    )

    run = _subcommand(sub, "run", "sync all tables and views (or --tables) into a destination")
    _add_target_args(run)
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="drop the selected tables' state and data and reload them in full",
    )
    run.add_argument(
        "--max-calls",
        type=int,
        default=None,
        metavar="N",
        help="spend at most N Caspio API calls (tables sync one by one; stop before call N+1; "
        "exit 3)",
    )
    run.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress lines (the report and warnings are still printed)",
    )
    run.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="when stderr is not a terminal: a progress line per table at most this often "
        "(default: 10)",
    )

    check = _subcommand(
        sub, "check", "check credentials, then list every table and view with its row count"
    )
    check.add_argument("--tables", nargs="+", metavar="NAME", help="names or glob patterns")

    plan = _subcommand(sub, "plan", "print the API calls a sync would spend, per table and total")
    _add_target_args(plan)

    reconcile = _subcommand(
        sub, "reconcile", "remove (or mark) destination rows deleted in Caspio; reads every PK_ID"
    )
    _add_target_args(reconcile)
    reconcile.add_argument(
        "--mode",
        choices=["delete", "mark"],
        default=None,
        help="override table_options.<T>.deletes for every table",
    )

    status = _subcommand(
        sub,
        "status",
        "show each table's last sync, rows, calls and cursor mark (no Caspio API call)",
    )
    _add_target_args(status, tables=False)
    status.add_argument("--json", action="store_true", help="print JSON, for monitoring")

    webhooks = _subcommand(
        sub, "webhooks", "install, show or remove the webhook that captures deletes (opt-in)"
    )
    webhooks.add_argument(
        "action",
        choices=["install", "status", "remove"],
        help="install (or bring up to date), show, or remove the webhook",
    )
    webhooks.add_argument("--url", help="install: where Caspio POSTs (https, or a tunnel)")
    webhooks.add_argument(
        "--tables", nargs="+", metavar="NAME", help="names or glob patterns (default: all tables)"
    )
    webhooks.add_argument(
        "--events",
        nargs="+",
        metavar="KINDS",
        help="install: delete (always), insert, update; comma-separated (default: delete)",
    )

    listen = _subcommand(
        sub, "listen", "receive webhook deliveries into the journal the next run applies"
    )
    listen.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    listen.add_argument("--port", type=int, required=True, help="port to listen on")
    listen.add_argument(
        "--path", default=None, help="URL path (default: the path of the install URL)"
    )

    usage = _subcommand(
        sub,
        "usage",
        "show the Caspio API calls of this quota period, the projection and its cost "
        "(no Caspio API call)",
    )
    _add_target_args(usage, tables=False)
    usage.add_argument("--json", action="store_true", help="print JSON, for monitoring")
    usage.add_argument(
        "--account",
        metavar="HOST",
        help="the Caspio host to report when the ledger holds several (default: the "
        "configured account's)",
    )

    demo = _subcommand(
        sub, "demo", "start the local Caspio emulator with its demo account and sync it to DuckDB"
    )
    demo.add_argument(
        "--duckdb-file",
        default="caspio_demo.duckdb",
        help="the DuckDB file to write (default: caspio_demo.duckdb)",
    )
    return parser


def _add_target_args(parser: argparse.ArgumentParser, tables: bool = True) -> None:
    if tables:
        parser.add_argument(
            "--tables", nargs="+", metavar="NAME", help="names or glob patterns (default: all)"
        )
    parser.add_argument(
        "--destination",
        default="duckdb",
        help="any dlt destination name, e.g. postgres, bigquery, snowflake (default: duckdb)",
    )
    parser.add_argument(
        "--dataset", default="caspio", help="dataset (schema) name (default: caspio)"
    )
    parser.add_argument(
        "--pipeline-name",
        default="caspio",
        help="dlt pipeline name: its state (cursor marks) is kept apart per name; one per "
        "Caspio account (default: caspio)",
    )
    parser.add_argument(
        "--duckdb-file", default=None, help="DuckDB file (default: caspio_sync.duckdb)"
    )


def _configure_logging(debug: bool, quiet: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    install_log_redaction()
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.removeFilter(_quiet_dlt)
    if not debug and not os.environ.get("RUNTIME__LOG_LEVEL"):
        # dlt's warnings and step errors repeat, over many lines, what the one error line and
        # the report say; --debug (or RUNTIME__LOG_LEVEL) shows them
        dlt_logger.addFilter(_quiet_dlt)


def _quiet_dlt(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.CRITICAL


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.debug, args.quiet)
    handlers = {
        "run": commands.run,
        "check": commands.check,
        "plan": commands.plan,
        "reconcile": commands.reconcile,
        "status": commands.status,
        "usage": commands.usage,
        "demo": commands.demo,
        "webhooks": commands.webhooks,
        "listen": commands.listen,
    }
    # every Caspio call of the command is recorded under its name, and flushed when it ends
    with interrupts.guard(), ledger_command(args.command):
        try:
            check_environment()
            code = handlers[args.command](args)
            signum = interrupts.received()
            if signum:
                print(commands.interrupted_line(signum, None), file=sys.stderr)
                return interrupts.exit_code(signum)
            return code
        except BaseException as exc:
            return _failed(exc, args)
        finally:
            commands.scrub(args)


def _failed(exc: BaseException, args: argparse.Namespace) -> int:
    signum = interrupts.received()
    if signum or isinstance(exc, KeyboardInterrupt):
        signum = signum or 2
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr)
        print(commands.interrupted_line(signum, exc), file=sys.stderr)
        return interrupts.exit_code(signum)
    if isinstance(exc, SystemExit):
        raise exc
    if not isinstance(exc, Exception):
        raise exc
    if args.debug:
        print(redact(traceback.format_exc()), file=sys.stderr)
    destination = getattr(args, "destination", None)
    print(f"caspio-sync: error: {describe_error(exc, destination)}", file=sys.stderr)
    return 1


def run_as_process() -> NoReturn:
    """The ``caspio-sync`` executable: ``main``, then ``exit_process`` with its exit code."""
    exit_process(main())


if __name__ == "__main__":
    run_as_process()
