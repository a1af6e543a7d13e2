"""The analysis notebook runs top to bottom on a freshly synced demo account."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.cli import main

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "revenue_by_segment.ipynb"


def test_revenue_notebook_answers_its_question(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "caspio_demo.duckdb"
    assert main(["demo", "--duckdb-file", str(db)]) == 0
    monkeypatch.setenv("CASPIO_DUCKDB", str(db))

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute(env=dict(os.environ))

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs), "no chart was drawn"
    printed = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")

    with duckdb.connect(str(db), read_only=True) as conn:
        segment, revenue = conn.execute(
            "select c.segment, sum(o.total) from caspio.orders o "
            "join caspio.customers c on c.customer_id = o.customer_id "
            "group by 1 order by 2 desc limit 1"
        ).fetchone()  # type: ignore[misc]
    assert f"Largest segment: {segment} with {float(revenue):,.2f}" in printed
