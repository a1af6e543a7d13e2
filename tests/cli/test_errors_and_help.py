"""Every bad input: one line naming the setting and the fix, the exit code, no traceback, no
secret (issue 15); help for every command and flag; global flags anywhere; the emulator's CLI."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import build_parser, main

from .conftest import base_env, cli, emulator_env

PG_SECRET = "pg-canary-Zq81"


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int, out: str, err: str, *needles: str, exit_code: int = 1) -> str:
    assert code == exit_code, (code, err)
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("caspio-sync: error: ")
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"
    assert PG_SECRET not in out + err
    return lines[0]


CASES: list[tuple[str, list[str], dict[str, str], list[str]]] = [
    (
        "postgres without credentials",
        ["--destination", "postgres"],
        {},
        ["[destination.postgres.credentials]", "DESTINATION__POSTGRES__CREDENTIALS__PASSWORD"],
    ),
    (
        "snowflake without credentials",
        ["--destination", "snowflake"],
        {},
        ["[destination.snowflake.credentials]", "DESTINATION__SNOWFLAKE__CREDENTIALS__"],
    ),
    (
        "postgres URL without a database",
        ["--destination", "postgres"],
        {"DESTINATION__POSTGRES__CREDENTIALS": f"postgresql://loader:{PG_SECRET}@127.0.0.1:5432"},
        ["database", "DESTINATION__POSTGRES__CREDENTIALS__DATABASE"],
    ),
    (
        "postgres URL missing a colon",
        ["--destination", "postgres"],
        {"DESTINATION__POSTGRES__CREDENTIALS": f"postgresql//loader:{PG_SECRET}@host/db"},
        ["DESTINATION__POSTGRES__CREDENTIALS", "not a valid URL"],
    ),
    ("mistyped destination", ["--destination", "postgress"], {}, ["did you mean 'postgres'"]),
    ("unknown destination", ["--destination", "banana"], {}, ["'banana'", "duckdb, ducklake"]),
    ("mistyped table", ["--tables", "Itemz"], {}, ["did you mean 'Items'"]),
    (
        "broken JSON credentials",
        [],
        {"SOURCES__CASPIO__CREDENTIALS": '{"client_id": '},
        ["SOURCES__CASPIO__CREDENTIALS", "not valid JSON"],
    ),
    (
        "credentials JSON not an object",
        [],
        {"SOURCES__CASPIO__CREDENTIALS": "[1, 2]"},
        ["SOURCES__CASPIO__CREDENTIALS", "JSON object"],
    ),
    (
        "page_size 0 from the environment",
        [],
        {"SOURCES__CASPIO__PAGE_SIZE": "0"},
        ["page_size", "set in the environment variable SOURCES__CASPIO__PAGE_SIZE"],
    ),
]


@pytest.mark.parametrize(("case", "extra", "env", "needles"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(
    case: str,
    extra: list[str],
    env: dict[str, str],
    needles: list[str],
    emulator: Any,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(work)
    for key, value in emulator_env(emulator, work, **env).items():
        monkeypatch.setenv(key, value)
    argv = ["run", "--duckdb-file", str(work / "s.duckdb"), *extra]
    one_error_line(*run_main(argv, capsys), *needles)


@pytest.mark.parametrize(
    ("name", "text", "needles"),
    [
        ("config.toml", "[sources.caspio]\npage_size = \n", ["config.toml", "line 2"]),
        ("secrets.toml", '[sources.caspio.credentials\nclient_id = "x"\n', ["secrets.toml"]),
        ("config.toml", "[sources.caspio]\npage_size = 0\n", ["page_size", "config.toml (line 2)"]),
    ],
    ids=["config syntax", "secrets syntax", "config value"],
)
def test_bad_toml_names_the_file_and_line(
    name: str, text: str, needles: list[str], emulator: Any, work: Path
) -> None:
    (work / ".dlt").mkdir()
    (work / ".dlt" / name).write_text(text)
    done = cli(["run", "--duckdb-file", str(work / "s.duckdb")], emulator_env(emulator, work), work)
    one_error_line(done.code, done.out, done.err, *needles)


def test_dataset_name_is_normalized_without_dlt_warnings(
    emulator: Any, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(work)
    for key, value in emulator_env(emulator, work).items():
        monkeypatch.setenv(key, value)
    argv = ["run", "--no-progress", "--duckdb-file", "s.duckdb", "--dataset", "my-data"]
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    assert len(err.splitlines()) == 1 and "'my_data'" in err, err
    assert "dataset 'my_data'" in out


def test_every_command_and_flag_has_help() -> None:
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        assert sub.description and sub.epilog and "caspio-sync " + name in sub.epilog, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"
    for action in parser._actions:
        assert action.help, action.option_strings


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_flags_before_or_after_the_subcommand(where: str) -> None:
    argv = ["--debug", "--quiet", "status"] if where == "before" else ["status", "--debug", "-q"]
    args = build_parser().parse_args(argv)
    assert args.debug is True and args.quiet is True
    assert build_parser().parse_args(["status"]).debug is False


def test_emulator_port_in_use_and_bad_dataset(work: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (work / "bad.json").write_text('{"tables": 5}')
        for argv in (["--port", str(port)], ["--port", "0", "--data", str(work / "bad.json")]):
            done = subprocess.run(
                [sys.executable, "-m", "caspio_emulator.cli", "serve", *argv],
                env=base_env(work),
                capture_output=True,
                text=True,
                timeout=60,
            )
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            assert done.returncode == 2 and len(lines) == 1, done.stderr
            assert "Traceback" not in done.stderr and lines[0].startswith("caspio-emulator: error:")
            assert ("already in use" if "--data" not in argv else "dataset") in lines[0]
