"""Reliability suite fixtures, plus the hooks `benchmarks/reliability_report.py` drives.

`RELIABILITY_RUNS=N` runs every scenario N times (one parametrized copy per run; tests marked
`once`, such as the hypothesis properties, keep one run). `RELIABILITY_JSON=path` writes each
run's outcome, duration and the figures a test recorded with `record_property` to that file,
for the report to tabulate.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import credential_env, make_dataset

RUNS = max(1, int(os.environ.get("RELIABILITY_RUNS", "1") or 1))
_RESULTS: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def reliability_run(request: pytest.FixtureRequest) -> int:
    """The run index when RELIABILITY_RUNS repeats a scenario (0 otherwise)."""
    return int(getattr(request, "param", 0))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    repeat = RUNS > 1 and "reliability_run" in metafunc.fixturenames
    if repeat and metafunc.definition.get_closest_marker("once") is None:
        metafunc.parametrize("reliability_run", range(RUNS), ids=lambda i: f"run{i}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when == "setup" and report.passed:
        return
    if report.when == "teardown" and report.passed:
        return
    marker = item.get_closest_marker("scenario")
    if marker is None:
        return
    message = ""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = getattr(crash, "message", "") or str(report.longrepr).splitlines()[-1]
    callspec = getattr(item, "callspec", None)
    _RESULTS.append(
        {
            "test": item.nodeid.split("[")[0],
            "run": int(callspec.params.get("reliability_run", 0)) if callspec else 0,
            "case": re.sub(r"(^|-)run\d+(?=-|$)", "", callspec.id).strip("-") if callspec else "",
            "kind": marker.args[0],
            "title": marker.args[1],
            "when": report.when,
            "outcome": report.outcome,
            "seconds": round(report.duration, 3),
            "properties": dict(report.user_properties),
            "message": message[:300],
        }
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("RELIABILITY_JSON")
    if path and (_RESULTS or "{worker}" not in path):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        Path(path.format(worker=worker)).write_text(json.dumps(_RESULTS, indent=1), "utf-8")


@pytest.fixture
def reliability_dataset() -> dict[str, Any]:
    return make_dataset()


@pytest.fixture
def emulator(
    caspio_emulator_factory: Callable[..., Any], reliability_dataset: dict[str, Any]
) -> Any:
    """A fresh emulator holding the reliability account (Items 1,200 rows, Notes 60)."""
    return caspio_emulator_factory(dataset=reliability_dataset)


@pytest.fixture
def emulator_env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator, with the connector pointed at it through SOURCES__CASPIO__ variables."""
    for key, value in credential_env(emulator).items():
        monkeypatch.setenv(key, value)
    return emulator
