"""Bad input refused clearly (issue 5): one line naming the problem and the fix, a non-zero exit,
no traceback without --debug, and the destination untouched.

Each case first loads the reliability account into a DuckDB file with a good configuration,
then runs `caspio-sync run` against the same file with one thing wrong, and compares the file's
rows and dlt's load history before and after. Most cases call `pipelines.cli.main` in-process;
those that could block on the network run the real console entry point in a subprocess with a
hard timeout.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest

from .harness import ITEMS, NOTES, child_env, credential_env, duckdb_rows, sync

ROOT = Path(__file__).resolve().parents[2]
SUBPROCESS_TIMEOUT = 60


def destination_snapshot(path: Path) -> dict[str, Any]:
    """Every data row plus dlt's load history: what "untouched" compares."""
    with duckdb.connect(str(path), read_only=True) as conn:
        loads = conn.execute(
            'select load_id, status from "caspio"."_dlt_loads" order by 1'
        ).fetchall()
    return {"items": duckdb_rows(path, ITEMS), "notes": duckdb_rows(path, NOTES), "loads": loads}


@pytest.fixture
def loaded(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A destination already holding the account, and the environment pointing at it."""
    sync(emulator, tmp_path, page_size=200)
    for key, value in credential_env(emulator).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SOURCES__CASPIO__MAX_RETRY_SECONDS", "3")
    yield emulator


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from pipelines.cli import main

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_cli_subprocess(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    env = {**env, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", *argv],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"caspio-sync did not give up within {SUBPROCESS_TIMEOUT} s: {exc.stderr!r}")
    return done.returncode, done.stdout, done.stderr


def assert_refused(code: int, out: str, err: str, *needles: str) -> str:
    """Exit 1, exactly one `caspio-sync: error:` line holding every needle, no traceback."""
    assert code == 1, (code, out, err)
    assert "Traceback" not in out + err, err
    errors = [line for line in err.splitlines() if line.startswith("caspio-sync: error:")]
    assert len(errors) == 1, err
    line = errors[0]
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


RUN = ["run", "--no-progress", "--pipeline-name", "caspio"]


def run_args(tmp_path: Path, *extra: str) -> list[str]:
    return [*RUN, "--duckdb-file", str(tmp_path / "sync.duckdb"), *extra]


# ------------------------------------------------------------------------------------------------


@pytest.mark.scenario("bad input", "wrong client secret")
def test_wrong_secret(
    loaded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = destination_snapshot(tmp_path / "sync.duckdb")
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET", "not-the-secret-4c7d1e")
    code, out, err = run_cli(run_args(tmp_path), capsys)
    assert_refused(code, out, err, "invalid_client", "CLIENT_SECRET")
    assert "not-the-secret-4c7d1e" not in out + err
    assert destination_snapshot(tmp_path / "sync.duckdb") == before


@pytest.mark.scenario("bad input", "--debug shows the traceback the plain run hides")
def test_debug_shows_traceback(
    loaded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET", "not-the-secret-4c7d1e")
    code, out, err = run_cli(["--debug", *run_args(tmp_path)], capsys)
    assert code == 1
    assert "Traceback" in err
    assert err.rstrip().splitlines()[-1].startswith("caspio-sync: error:")


@pytest.mark.scenario("bad input", "unknown host (*.invalid: does not resolve)")
def test_unresolvable_host(loaded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = destination_snapshot(tmp_path / "sync.duckdb")
    env = child_env(
        loaded,
        tmp_path,
        SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL="https://c9nosuch.invalid",
        SOURCES__CASPIO__MAX_RETRY_SECONDS="3",
    )
    code, out, err = run_cli_subprocess(run_args(tmp_path), env, tmp_path)
    assert_refused(code, out, err, "c9nosuch.invalid", "integration URL")
    assert destination_snapshot(tmp_path / "sync.duckdb") == before


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.scenario("bad input", "wrong port: nothing listens (connection refused)")
def test_nothing_listens(loaded: Any, tmp_path: Path) -> None:
    before = destination_snapshot(tmp_path / "sync.duckdb")
    port = free_port()
    env = child_env(
        loaded,
        tmp_path,
        SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL=f"http://127.0.0.1:{port}",
        SOURCES__CASPIO__MAX_RETRY_SECONDS="3",
    )
    code, out, err = run_cli_subprocess(run_args(tmp_path), env, tmp_path)
    assert_refused(code, out, err, f"127.0.0.1:{port}", "integration URL")
    assert destination_snapshot(tmp_path / "sync.duckdb") == before


@pytest.mark.scenario("bad input", "http:// to a non-loopback host")
def test_plain_http_to_remote_host(
    loaded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = destination_snapshot(tmp_path / "sync.duckdb")
    monkeypatch.setenv(
        "SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL", "http://c1abc123.caspio.com"
    )
    code, out, err = run_cli(run_args(tmp_path), capsys)
    assert_refused(code, out, err, "plain http", "https://")
    assert destination_snapshot(tmp_path / "sync.duckdb") == before


@pytest.mark.scenario("bad input", "a table or view that does not exist")
def test_unknown_table(loaded: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = destination_snapshot(tmp_path / "sync.duckdb")
    code, out, err = run_cli(run_args(tmp_path, "--tables", "Nope_Table"), capsys)
    assert_refused(code, out, err, "Nope_Table", "Items", "Notes")
    assert destination_snapshot(tmp_path / "sync.duckdb") == before


BAD_CONFIG: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "cursor field missing",
        {"SOURCES__CASPIO__TABLE_OPTIONS": json.dumps({ITEMS: {"cursor_field": "Nope"}})},
        ["Nope", "cursor_field"],
    ),
    (
        "cursor field not a date/time",
        {"SOURCES__CASPIO__TABLE_OPTIONS": json.dumps({ITEMS: {"cursor_field": "Qty"}})},
        ["Qty", "date/time", "cursor_field"],
    ),
    ("page_size out of range", {"SOURCES__CASPIO__PAGE_SIZE": "3"}, ["page_size", "5"]),
    ("page_size not a number", {"SOURCES__CASPIO__PAGE_SIZE": "lots"}, ["page_size"]),
    ("max_workers zero", {"SOURCES__CASPIO__MAX_WORKERS": "0"}, ["max_workers"]),
    (
        "unknown write disposition",
        {"SOURCES__CASPIO__TABLE_OPTIONS": json.dumps({ITEMS: {"write_disposition": "upsert"}})},
        ["write_disposition", "merge"],
    ),
    (
        "unknown table option",
        {"SOURCES__CASPIO__TABLE_OPTIONS": json.dumps({ITEMS: {"cursor": "Updated"}})},
        ["cursor", "valid options"],
    ),
    (
        "table_options not a table",
        {"SOURCES__CASPIO__TABLE_OPTIONS": '"Items"'},
        ["table_options"],
    ),
    (
        "filter that escapes its parentheses",
        {"SOURCES__CASPIO__TABLE_OPTIONS": json.dumps({ITEMS: {"where": "Qty > 1) OR (1=1"}})},
        ["where"],
    ),
    (
        "filter with a statement separator",
        {"SOURCES__CASPIO__TABLE_OPTIONS": json.dumps({ITEMS: {"where": "Qty > 1; DROP TABLE x"}})},
        ["where"],
    ),
    (
        "malformed integration URL",
        {"SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL": "https://c1 abc.caspio.com/x"},
        ["integration_url"],
    ),
    (
        "malformed subdomain",
        {
            "SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL": "",
            "SOURCES__CASPIO__CREDENTIALS__SUBDOMAIN": "b3poa!",
        },
        ["subdomain"],
    ),
    (
        "client secret missing",
        {"SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET": ""},
        ["client_secret"],
    ),
]


@pytest.mark.scenario("bad input", "malformed config values and bad cursor fields")
@pytest.mark.parametrize(("case", "env", "needles"), BAD_CONFIG, ids=[c[0] for c in BAD_CONFIG])
def test_bad_config_value(
    loaded: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    env: dict[str, str],
    needles: list[str],
) -> None:
    before = destination_snapshot(tmp_path / "sync.duckdb")
    for key, value in env.items():
        if value == "":
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    code, out, err = run_cli(run_args(tmp_path), capsys)
    assert_refused(code, out, err, *needles)
    assert destination_snapshot(tmp_path / "sync.duckdb") == before


@pytest.mark.scenario("bad input", "a q.where the API rejects (SqlServerError / FieldNotFound)")
@pytest.mark.parametrize(
    ("where", "needles"),
    [("Qty >> 1", ["SqlServerError", "where"]), ("No_Such_Field = 1", ["No_Such_Field"])],
)
def test_where_rejected_by_the_api(
    loaded: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    needles: list[str],
) -> None:
    before = destination_snapshot(tmp_path / "sync.duckdb")
    monkeypatch.setenv("SOURCES__CASPIO__TABLE_OPTIONS", json.dumps({ITEMS: {"where": where}}))
    code, out, err = run_cli(run_args(tmp_path), capsys)
    assert_refused(code, out, err, *needles)
    assert destination_snapshot(tmp_path / "sync.duckdb") == before


# ------------------------------------------------------------------------------------------------
# answers that are not Caspio JSON, from a tiny local server


class _NotCaspio(BaseHTTPRequestHandler):
    body = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
    content_type = "text/html"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


class _PlainText(_NotCaspio):
    body = b"OK"
    content_type = "text/plain"


@pytest.fixture(params=[_NotCaspio, _PlainText], ids=["html", "plain-text"])
def not_caspio(request: pytest.FixtureRequest) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.scenario("bad input", "an answer that is HTML or not JSON")
def test_answer_not_json(loaded: Any, tmp_path: Path, not_caspio: str) -> None:
    before = destination_snapshot(tmp_path / "sync.duckdb")
    env = child_env(
        loaded,
        tmp_path,
        SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL=not_caspio,
        SOURCES__CASPIO__MAX_RETRY_SECONDS="3",
    )
    code, out, err = run_cli_subprocess(run_args(tmp_path), env, tmp_path)
    assert_refused(code, out, err, "JSON", "integration URL")
    assert destination_snapshot(tmp_path / "sync.duckdb") == before
