"""No secret printed or left in a file, from any source, on success and failure paths at
DEBUG (issue 15); connection refused and https-to-http fail within seconds."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.test_security import leaks

from .conftest import cli, emulator_env

POSTGRES = ("127.0.0.1", 5432)


def postgres_up() -> bool:
    try:
        with socket.create_connection(POSTGRES, timeout=1):
            return True
    except OSError:
        return False


def test_no_secret_anywhere(
    caspio_emulator_factory: Any, account: dict[str, Any], work: Path
) -> None:
    """Canaries in every credential form: the Caspio client secret, a destination password in
    a URL, in DESTINATION__*__CREDENTIALS__PASSWORD, in secrets.toml, and in a malformed URL.
    Every path runs with --debug and RUNTIME__LOG_LEVEL=DEBUG; then stdout, stderr and every
    file of the pipeline's folder (trace, state, schemas, load packages) and the DuckDB file
    are searched."""
    canary = {
        "caspio secret": f"caspio-canary-{uuid.uuid4().hex[:12]}",
        "url password": f"urlpw-canary-{uuid.uuid4().hex[:8]}",
        "env password": f"envpw-canary-{uuid.uuid4().hex[:8]}",
        "toml password": f"tomlpw-canary-{uuid.uuid4().hex[:8]}",
        "malformed url password": f"badurl-canary-{uuid.uuid4().hex[:8]}",
    }
    account["account"]["client_secret"] = canary["caspio secret"]
    emulator = caspio_emulator_factory(dataset=account)
    (work / ".dlt").mkdir()
    (work / ".dlt" / "secrets.toml").write_text(
        f'[destination.mssql.credentials]\npassword = "{canary["toml password"]}"\n'
        f'host = "127.0.0.1"\nport = 1\ndatabase = "x"\nusername = "u"\n'
    )
    env = emulator_env(emulator, work, RUNTIME__LOG_LEVEL="DEBUG")
    duck = ["--duckdb-file", str(work / "sync.duckdb")]
    runs: list[tuple[list[str], dict[str, str], set[int]]] = [
        (["run", *duck], {}, {0}),
        (["status", "--json", *duck], {}, {0}),
        (
            ["run", *duck],
            {"SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET": canary["caspio secret"] + "x"},
            {1},
        ),
        (
            ["run", "--destination", "postgres"],
            {
                "DESTINATION__POSTGRES__CREDENTIALS": (
                    f"postgresql//u:{canary['malformed url password']}@h/db"
                )
            },
            {1},
        ),
        (
            ["run", "--destination", "postgres"],
            {
                "DESTINATION__POSTGRES__CREDENTIALS__PASSWORD": canary["env password"],
                "DESTINATION__POSTGRES__CREDENTIALS__HOST": "127.0.0.1",
                "DESTINATION__POSTGRES__CREDENTIALS__PORT": "1",
                "DESTINATION__POSTGRES__CREDENTIALS__DATABASE": "test",
                "DESTINATION__POSTGRES__CREDENTIALS__USERNAME": "loader",
            },
            {1},
        ),
        (["run", "--destination", "mssql"], {}, {1}),
    ]
    if postgres_up():
        dataset = f"leak_{uuid.uuid4().hex[:8]}"
        url = f"postgresql://postgres:{canary['url password']}@127.0.0.1:5432/test"
        runs.append(
            (
                ["run", "--destination", "postgres", "--dataset", dataset],
                {"DESTINATION__POSTGRES__CREDENTIALS": url},
                {0},
            )
        )
    outputs = []
    for argv, extra, codes in runs:
        done = cli(["--debug", *argv], {**env, **extra}, work)
        assert done.code in codes, (argv, done.err[-3000:])
        outputs += [done.out, done.err]
        # dlt keeps only the last run's trace: search the pipeline's folder after every run
        found = leaks(work / "dlt_data", canary)
        assert found == [], (argv, found)
    (work / "outputs.txt").write_text("\n".join(outputs))
    assert "DEBUG" in "".join(outputs)
    found = leaks(work, canary, skip=(work / ".dlt", work / "token_cache"))
    assert found == [], found
    assert leaks(work, {"row": "O'Brien & Sons #0"}), "the scan must see what the sync wrote"


class _PlainHttp(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.end_headers()

    do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def plain_http() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlainHttp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", ["refused", "https to http"])
def test_fails_fast_where_retrying_cannot_help(
    case: str, emulator: Any, work: Path, plain_http: int
) -> None:
    url = (
        f"http://127.0.0.1:{free_port()}"
        if case == "refused"
        else f"https://127.0.0.1:{plain_http}"
    )
    env = emulator_env(emulator, work, SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL=url)
    # the child's timeout is a guard, not the check: the check is that no retry happened
    done = cli(["run", "--duckdb-file", str(work / "s.duckdb")], env, work, timeout=30)
    assert done.code == 1 and len(done.err_lines) == 1, done.err
    needle = "refused" if case == "refused" else "tls"
    assert needle in done.err_lines[0].lower(), done.err_lines[0]
    assert "gave up after" not in done.err, "a final error was retried"
