"""Security (issue 5): no secret or token in anything written, a private token cache, and TLS
certificate checks that cannot be switched off."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow.parquet as pq
import pytest

from tests.tiny_caspio import serving

from .harness import (
    ITEMS,
    JUST_RENEWED,
    NOTES,
    assert_parity,
    child_env,
    credential_env,
    make_client,
)

ROOT = Path(__file__).resolve().parents[2]
CALLS_BETWEEN_500S = 3
"""Calls the emulator answers after an armed 500 before the next is armed (the 500 included)."""


# ------------------------------------------------------------------------------------------------
# grepping everything a sync wrote


def readable_forms(path: Path) -> Iterator[str]:
    """The file as text, plus every decoded form a secret could hide in (gzip, parquet,
    pickle, DuckDB tables)."""
    data = path.read_bytes()
    yield data.decode("utf-8", "replace")
    yield data.decode("latin-1")
    if data[:2] == b"\x1f\x8b":
        yield gzip.decompress(data).decode("utf-8", "replace")
    if data[:4] == b"PAR1":
        yield str(pq.read_table(path).to_pylist())
    if path.suffix == ".pickle":
        try:
            yield repr(pickle.loads(data))
        except Exception as exc:  # noqa: BLE001 - a pickle we cannot load is still grepped raw
            yield f"<unpicklable {exc!r}>"
    if path.suffix == ".duckdb":
        with duckdb.connect(str(path), read_only=True) as conn:
            tables = conn.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
            for schema, table in tables:
                rows = conn.execute(f'select * from "{schema}"."{table}"').fetchall()
                yield repr(rows)
                if table == "_dlt_pipeline_state":
                    from dlt.common.pipeline import TPipelineState  # noqa: F401
                    from dlt.pipeline.state_sync import decompress_state

                    for row in rows:
                        for value in row:
                            if isinstance(value, str) and len(value) > 40:
                                try:
                                    yield json.dumps(decompress_state(value))
                                except Exception:  # noqa: BLE001, S112 - not a state blob
                                    continue


def leaks(root: Path, secrets: dict[str, str], skip: tuple[Path, ...] = ()) -> list[str]:
    found: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if any(path.is_relative_to(s) for s in skip) or path.suffix == ".wal":
            continue
        for text in readable_forms(path):
            for label, secret in secrets.items():
                if secret and secret in text:
                    found.append(f"{label} in {path.relative_to(root)}")
    return sorted(set(found))


def issued_secrets(emulator: Any) -> dict[str, str]:
    """The client secret and every access and refresh token the emulator ever issued."""
    out = {"client secret": emulator.client_secret}
    with emulator.app.token_lock:
        for i, token in enumerate(emulator.app.tokens):
            out[f"access token #{i}"] = token
        for i, token in enumerate(emulator.app.refresh_tokens):
            out[f"refresh token #{i}"] = token
    return out


@pytest.mark.scenario("security", "full sync at DEBUG with tracing: no secret or token anywhere")
def test_no_secret_or_token_in_anything_written(
    caspio_emulator_factory: Any, reliability_dataset: dict[str, Any], tmp_path: Path
) -> None:
    """Two CLI syncs at DEBUG (--debug, RUNTIME__LOG_LEVEL=DEBUG) with 2-second tokens, revoked
    tokens (stale-token 400 replays), retried 500s and a final run that fails on the quota,
    so tokens are issued, refreshed, refused and errors are raised. Then every byte written is
    searched, decoded where compressed: stdout/stderr, the pipeline working dir (state, trace
    pickle, schemas, load packages), the DuckDB file (rows and dlt's compressed state) and the
    trace as JSON. A row value the dataset holds proves the scan reads those files. (Committed
    cassettes are checked by tests/source/test_cassettes.py.)"""
    emulator = caspio_emulator_factory(
        dataset=reliability_dataset, token_ttl=2, stale_token_400=True, latency_ms=10
    )
    work = tmp_path / "work"
    work.mkdir()
    env = child_env(
        emulator,
        work,
        RUNTIME__LOG_LEVEL="DEBUG",
        SOURCES__CASPIO__PAGE_SIZE="50",
        PYTHONPATH=str(ROOT),
    )
    argv = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "--debug",
        "run",
        "--duckdb-file",
        str(work / "sync.duckdb"),
        "--no-progress",
    ]
    outputs: list[str] = []
    stop = threading.Event()

    def revoke() -> None:
        """Every 0.5 s the tokens expire; a 500 is armed every second, but only once a few
        calls came through after the last one: timed by the clock alone, a client slowed by a
        busy machine would meet a 500 on every retry and rightly give up."""
        tick, armed_at = 0, 0
        while not stop.wait(0.5):
            tick += 1
            emulator.expire_tokens(sparing_seconds=JUST_RENEWED)
            calls = emulator.calls
            due = tick % 2 == 0 and calls - armed_at >= CALLS_BETWEEN_500S
            if due and not emulator.knobs.script:
                emulator.script_faults(["500"])
                armed_at = calls

    emulator.script_faults(["500"])  # the first sync's first call, whatever the timing
    revoker = threading.Thread(target=revoke, daemon=True)
    revoker.start()
    try:
        for _ in range(2):
            done = subprocess.run(
                argv, env=env, cwd=work, capture_output=True, text=True, timeout=120
            )
            outputs += [done.stdout, done.stderr]
            assert done.returncode == 0, done.stderr[-3000:]
    finally:
        stop.set()
        revoker.join(timeout=5)
    assert any(e.status == 500 for e in emulator.log), "the syncs met no 500"
    emulator.configure(quota=3)
    failed = subprocess.run(
        [*argv[:-1], "--full-refresh", "--no-progress"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outputs += [failed.stdout, failed.stderr]
    assert failed.returncode == 1
    emulator.configure(quota=None)

    pipeline = dlt.attach("caspio", pipelines_dir=str(work / "dlt_data" / "pipelines"))
    trace = pipeline.last_trace
    (work / "trace.json").write_text(json.dumps(trace.asdict() if trace else {}, default=str))
    (work / "outputs.txt").write_text("\n".join(outputs))

    secrets = issued_secrets(emulator)
    assert len(secrets) >= 4, "the test did not issue several tokens"
    assert "DEBUG" in "".join(outputs), "DEBUG logging was not on"
    assert leaks(work, secrets, skip=(work / "token_cache",)) == []
    # the scanner must see what the sync wrote: a row value is found in the DuckDB file, so a
    # secret written there would be found too; and the pipeline's folder keeps no copy of the
    # rows (its loaded files are removed, pipelines/cleanup.py)
    canary = leaks(work, {"row": "O'Brien & Sons #0"})
    assert any(".duckdb" in hit for hit in canary), canary
    assert not any("dlt_data" in hit for hit in canary), canary
    assert_parity(emulator, work / "sync.duckdb", [ITEMS, NOTES])


# ------------------------------------------------------------------------------------------------
# the token cache


def cache_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*.json") if p.is_file()]


@pytest.mark.scenario("security", "token cache: created 0600 in a 0700 dir, even with umask 000")
def test_token_cache_is_private(emulator: Any, tmp_path: Path) -> None:
    cache_dir = tmp_path / "tc"
    old = os.umask(0)
    try:
        client = make_client(emulator, token_cache_dir=str(cache_dir))
        client.list_tables()
    finally:
        os.umask(old)
    files = cache_files(cache_dir)
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    content = files[0].read_text()
    assert emulator.client_secret not in content and emulator.client_id not in content
    assert emulator.client_id not in files[0].name


@pytest.mark.scenario("security", "token cache readable by group/others: refused, clear message")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660], ids=oct)
def test_token_cache_readable_by_others_is_refused(
    emulator: Any, tmp_path: Path, mode: int
) -> None:
    """A cache file others can read is refused with one line naming the file and the fix (in a
    fresh process, as the next scheduled run would meet it); the run does not fall back to
    using the exposed token."""
    work = tmp_path / "w"
    work.mkdir()
    env = child_env(emulator, work, PYTHONPATH=str(ROOT))
    argv = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "--duckdb-file",
        str(work / "s.duckdb"),
        "--no-progress",
    ]
    first = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    files = cache_files(work / "token_cache")
    assert len(files) == 1
    files[0].chmod(mode)
    emulator.reset_log()
    second = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    errors = [ln for ln in second.stderr.splitlines() if ln.startswith("caspio-sync: error:")]
    assert len(errors) == 1, second.stderr
    assert "chmod 600" in errors[0] and str(files[0]) in errors[0]
    assert not any("/records" in e.path for e in emulator.log), "read data with an exposed token"


# ------------------------------------------------------------------------------------------------
# TLS


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_server(self_signed: tuple[Path, Path]) -> Iterator[str]:
    cert, key = self_signed
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    with serving("TlsTable", tls=ctx) as (url, _):
        yield url


def tls_client(url: str, **kwargs: Any) -> Any:
    from sources.caspio import CaspioClient, CaspioCredentials

    creds = CaspioCredentials(client_id="tls-id", client_secret="tls-secret", integration_url=url)
    return CaspioClient(creds, token_cache=False, max_retry_seconds=3, backoff_base=0.05, **kwargs)


@pytest.mark.scenario("security", "TLS: an untrusted certificate is refused, fast and clearly")
def test_untrusted_certificate_is_refused(
    tls_server: str, self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A self-signed server is refused with a message naming the certificate problem, without
    minutes of retries; trusting the certificate the documented way (REQUESTS_CA_BUNDLE)
    makes the same call succeed, so the refusal is the certificate check and nothing else."""
    import requests

    from sources.caspio import CaspioApiError

    with pytest.raises(CaspioApiError) as refused:
        tls_client(tls_server).list_tables()
    assert "certificate" in str(refused.value).lower(), str(refused.value)

    # a caller-supplied session with verification off does not switch it off
    session = requests.Session()
    session.verify = False
    with pytest.raises(CaspioApiError):
        tls_client(tls_server, session=session).list_tables()
    # nor do the environment variables that blank the CA bundle
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    with pytest.raises(CaspioApiError):
        tls_client(tls_server).list_tables()
    # nor a `verify` parameter: there is none
    with pytest.raises(TypeError):
        tls_client(tls_server, verify=False)

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self_signed[0]))
    assert tls_client(tls_server).list_tables() == ["TlsTable"]


@pytest.mark.scenario("security", "TLS: `verify = false` in config cannot disable checks")
def test_verify_false_in_config_is_not_honoured(
    tls_server: str, tmp_path: Path, emulator: Any
) -> None:
    env = child_env(
        emulator,
        tmp_path,
        PYTHONPATH=str(ROOT),
        SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL=tls_server,
        SOURCES__CASPIO__VERIFY="false",
        SOURCES__CASPIO__CREDENTIALS__VERIFY="false",
        SOURCES__CASPIO__MAX_RETRY_SECONDS="3",
        CURL_CA_BUNDLE="",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--duckdb-file",
            str(tmp_path / "s.duckdb"),
            "--no-progress",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "certificate" in done.stderr.lower(), done.stderr
    assert "Traceback" not in done.stderr
    assert credential_env(emulator)  # the emulator only lends its credentials here
