"""``reader.py``: an object's pages as Arrow tables, decoded in one place.

Oracle: the emulator's own wire rows, read back by the test (never through the connector's
converters): PK_IDs and text values compared as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from sources.caspio import CaspioClient, CaspioError
from sources.caspio.reader import RecordReader
from sources.caspio.schema import build_schema

from .conftest import record_calls, reset_log

MakeClient = Callable[..., CaspioClient]
DATASET = {
    "tables": {
        "T": {
            "fields": [{"Name": "Name", "Type": "STRING"}, {"Name": "Qty", "Type": "INTEGER"}],
            "rows": [{"Name": f"n{i}", "Qty": i} for i in range(1, 2501)],
        }
    }
}


def _reader(client: CaspioClient, **kw: Any) -> RecordReader:
    schema = build_schema("T", "tables", client.get_fields("tables", "T"))
    return RecordReader(client, schema, **kw)


def _rows(tables: list[pa.Table]) -> list[tuple[int, str, int]]:
    rows = [r for t in tables for r in t.to_pylist()]
    return sorted((r["PK_ID"], r["Name"], r["Qty"]) for r in rows)


def _expected(emu: Any) -> list[tuple[int, str, int]]:
    return sorted((r["PK_ID"], r["Name"], r["Qty"]) for r in emu.table_rows("T"))


def test_every_page_is_an_arrow_table_of_the_schema(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    client = make_client(emu, max_workers=3)
    reader = _reader(client)
    tables = list(reader.tables())
    assert all(t.schema.equals(reader.schema.arrow_schema) for t in tables)
    assert _rows(tables) == _expected(emu)
    assert reader.server_time is not None


def test_a_cut_connection_is_retried_by_the_client(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    client = make_client(emu, max_workers=1)
    reader = _reader(client)
    reset_log(emu)
    emu.script_faults(["truncate"])  # half the body, then the connection closes
    assert _rows(list(reader.tables())) == _expected(emu)
    assert client.stats.retries["connection"] == 1
    assert len(record_calls(emu)) == 3 + 1, "three pages and the one asked for again"


def test_a_2xx_body_that_is_not_whole_json_is_asked_for_again(
    caspio_emulator_factory: Callable[..., Any],
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy that cuts a body without the connection noticing: complete HTTP, broken JSON."""
    emu = caspio_emulator_factory(dataset=DATASET)
    client = make_client(emu, max_workers=1)
    reader = _reader(client)
    real = client.get_records_body
    cut: list[int] = []

    def cut_once(*args: Any) -> Any:
        resp = real(*args)
        if not cut:
            cut.append(len(resp.data))
            resp.data = resp.data[: len(resp.data) // 2]
        return resp

    monkeypatch.setattr(client, "get_records_body", cut_once)
    reset_log(emu)
    assert _rows(list(reader.tables())) == _expected(emu)
    assert cut and client.stats.retries["invalid_json"] == 1
    assert len(record_calls(emu)) == 3 + 1, "three pages and the one asked for again"


def test_pages_the_fast_decoder_declines_take_the_general_way(
    caspio_emulator_factory: Callable[..., Any],
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    reader = _reader(make_client(emu))
    monkeypatch.setattr(reader.decoder, "decode", lambda body: None)
    monkeypatch.setattr(reader.decoder, "decode_counted", lambda body: None)
    tables = list(reader.tables())
    assert all(t.schema.equals(reader.schema.arrow_schema) for t in tables)
    assert _rows(tables) == _expected(emu)


def test_values_that_fit_neither_way_name_the_object(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=DATASET)
    client = make_client(emu)
    reader = _reader(client)
    emu.update_field("T", "Qty", {"Type": "STRING"})
    emu.update("T", "PK_ID = 2", {"Qty": "many"})
    with pytest.raises(CaspioError, match="T: a page holds values that do not fit"):
        list(reader.tables())
