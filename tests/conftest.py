"""Shared fixtures: isolated dlt working dirs, a real PostgreSQL warehouse, no user config leaks.

The emulator fixtures (`caspio_emulator`, `caspio_emulator_factory`) come from the
`caspio_emulator.pytest_plugin` entry point.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.helpers import drop_dataset

# Property tests explore new random inputs on every developer run (that is how they find
# bugs); in CI the examples are derandomized so a landing is judged on a reproducible suite.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")

POSTGRES_DSN = os.environ.get(
    "CASPIO_TEST_POSTGRES_DSN", "postgresql://postgres:postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _isolated_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own pipelines dir, token cache and cwd: no state leaks between tests
    and nothing touches the developer's ~/.dlt or ~/.cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    for key in list(os.environ):
        if key.startswith("SOURCES__CASPIO__"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SOURCES__CASPIO__TOKEN_CACHE_DIR", str(tmp_path / "token_cache"))
    yield


def _postgres_available() -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        import psycopg2

        psycopg2.connect(POSTGRES_DSN, connect_timeout=3).close()
    except Exception as exc:  # any failure means: no usable server here
        return f"PostgreSQL at {POSTGRES_DSN} is not reachable: {exc}".strip()
    return None


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The local PostgreSQL server; skipped visibly without one, but never skipped in CI."""
    reason = _postgres_available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}: CI must never pass by skipping warehouse tests")
        pytest.skip(reason)
    return POSTGRES_DSN


NEVER_SKIP = ("tests/emulator/test_conformance.py", "tests/emulator/test_openapi_subset.py")
"""Tests whose skip is a failure: conformance must run in every clone."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A skipped conformance test fails the run instead of passing silently."""
    report = yield
    if report.skipped and item.nodeid.startswith(NEVER_SKIP):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped ({report.longrepr}): conformance never skips"
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line when warehouse tests skipped (locally, no PostgreSQL): visible, not silent."""
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if "PostgreSQL" in str(r.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"warehouse tests: {len(skipped)} skipped, PostgreSQL at {POSTGRES_DSN} not "
            "reachable (with CI=true they fail instead)",
            yellow=True,
            bold=True,
        )


@pytest.fixture
def postgres_dataset(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema name, dropped afterwards (with dlt's staging schemas: a named
    pipeline's is ``<name>_staging_<pipeline>``)."""
    name = f"caspio_test_{uuid.uuid4().hex[:10]}"
    yield name
    drop_dataset(postgres_dsn, name)
