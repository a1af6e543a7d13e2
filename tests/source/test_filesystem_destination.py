"""The plain filesystem destination cannot merge: a merge there appends, so a second run of a
changed table would hold each changed row twice. The run stops in one line instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from sources.caspio import CaspioClient, caspio

from .conftest import credentials_for

MakeClient = Callable[..., CaspioClient]


def test_a_merge_into_plain_files_stops_in_one_line(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    pipeline = dlt.pipeline(
        "fs",
        destination=dlt.destinations.filesystem(str(tmp_path / "bucket")),
        pipelines_dir=str(tmp_path / "p"),
    )

    def run(**kw: Any) -> Any:
        source = caspio(credentials=credentials_for(emu), client=make_client(emu), **kw)
        return pipeline.run(source.with_resources("customers"))

    run()  # the first run reads everything and replaces: files are fine
    emu.set_clock(None)
    emu.update("Customers", "PK_ID <= 2", {"City": "Elsewhere"})
    with pytest.raises(PipelineStepFailed) as stopped:
        run()
    assert "Customers: the filesystem destination appends plain files" in str(stopped.value)
    # replace works on plain files: every run rewrites the table
    run(table_options={"Customers": {"write_disposition": "replace"}})
    rows = pipeline.dataset().customers.df()
    assert sorted(rows["pk_id"]) == sorted(r["PK_ID"] for r in emu.table_rows("Customers"))
