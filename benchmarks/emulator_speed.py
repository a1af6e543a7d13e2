"""Emulator speed: is the local Caspio ever the bottleneck of a sync or a benchmark?

Generates a 1,000,000-row wide table, then pages it over one keep-alive connection and records,
per page, the server-side time (the ``Server-Timing: app;dur=`` header the emulator adds: query
parsing, SQL, JSON) and the client-observed time (request sent -> body parsed).

    .venv/bin/python benchmarks/emulator_speed.py [--rows 1000000] [--pages 50] [--no-write]

Writes the figures between the BENCH markers of docs/emulator.md (unless --no-write).
Measured, never invented: rerun it on your machine to get your numbers.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caspio_emulator import Emulator  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "emulator.md"
START, END = "<!-- BENCH:START -->", "<!-- BENCH:END -->"


def measure(
    session: requests.Session, url: str, params_list: list[dict[str, str | int]]
) -> tuple[list[float], list[float], int]:
    server, client = [], []
    rows = 0
    for params in params_list:
        t0 = time.perf_counter()
        r = session.get(url, params=params, timeout=60)
        body = r.json()
        client.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        m = re.search(r"dur=([0-9.]+)", r.headers.get("Server-Timing", ""))
        server.append(float(m.group(1)) if m else float("nan"))
        rows = len(body["Result"])
    return server, client, rows


def fmt(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"{statistics.median(values):.1f} ms (p95 {p95:.1f})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pages", type=int, default=50)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    emu = Emulator(generate={"Big": args.rows})
    gen_s = time.perf_counter() - t0
    gc.collect()
    gc.freeze()  # the generated batches are gone; keep GC pauses out of the page timings
    results: list[tuple[str, str, str, int]] = []
    with emu:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {emu.access_token()}"
        url = emu.v3_url + "/tables/Big/records"
        deep = max(0, args.rows - 100_000)
        cases: list[tuple[str, list[dict[str, str | int]]]] = [
            (
                f"keyset page deep in the table: `q.where=PK_ID > {deep}+k*1000`, "
                "`q.orderBy=PK_ID`, `q.pageSize=1000`",
                [
                    {
                        "q.where": f"PK_ID > {deep + k * 1000}",
                        "q.orderBy": "PK_ID",
                        "q.pageSize": 1000,
                    }
                    for k in range(args.pages)
                ],
            ),
            (
                "first page, no parameters but `q.pageSize=1000`",
                [{"q.pageSize": 1000} for _ in range(args.pages)],
            ),
            (
                "page-number paging deep (`q.pageNumber=901`, `q.pageSize=1000`: an OFFSET scan)",
                [{"q.pageNumber": 901, "q.pageSize": 1000} for _ in range(max(5, args.pages // 5))],
            ),
            (
                "keyset page + `q.getPaginationInfo=true` (a COUNT over the matching rows)",
                [
                    {
                        "q.where": f"PK_ID > {deep}",
                        "q.orderBy": "PK_ID",
                        "q.pageSize": 1000,
                        "q.getPaginationInfo": "true",
                    }
                    for _ in range(max(5, args.pages // 5))
                ],
            ),
            (
                "incremental page on the TIMESTAMP: `q.where=Updated > '2023-06-01T00:00:00'`, "
                "`q.orderBy=Updated, PK_ID`",
                [
                    {
                        "q.where": "Updated > '2023-06-01T00:00:00'",
                        "q.orderBy": "Updated, PK_ID",
                        "q.pageSize": 1000,
                    }
                    for _ in range(max(5, args.pages // 5))
                ],
            ),
        ]
        measure(s, url, cases[0][1][:3])  # warm-up
        for label, plist in cases:
            server_ms, client_ms, rows = measure(s, url, plist)
            results.append((label, fmt(server_ms), fmt(client_ms), rows))

    try:
        load = os.getloadavg()
        load_text = f"load average {load[0]:.2f} at start of paging"
    except OSError:
        load_text = "load average n/a"
    big = emu.store.table("Big")
    n_fields = len(big.fields) if big is not None else 0
    header = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
        f"`.venv/bin/python benchmarks/emulator_speed.py --rows {args.rows} --pages {args.pages}` "
        f"on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({load_text}), "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}. "
        f"Generating the {args.rows:,}-row wide table ({n_fields} fields "
        f"+ PK_ID) took {gen_s:.1f} s.\n\n"
    )
    table = "| request (1,000-row pages) | server time, median | client-observed, median | rows |\n"
    table += "|---|---|---|---|\n"
    for label, server, client, rows in results:
        table += f"| {label} | {server} | {client} | {rows} |\n"
    text = header + table
    print(text)
    if not args.no_write and DOC.exists():
        doc = DOC.read_text()
        if START in doc and END in doc:
            before, rest = doc.split(START, 1)
            _, after = rest.split(END, 1)
            DOC.write_text(before + START + "\n" + text + END + after)
            print(f"wrote figures into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
