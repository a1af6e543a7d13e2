"""The download floor: GET every page on one keep-alive connection and throw the bytes away.

No client that parses, converts and stores the rows can beat this; it measures the emulator and
the wire. Rows are counted by scanning for the `"PK_ID"` key (a byte search, not JSON parsing)
so the harness can still check that every row came over. Pages are addressed by key
(`q.where=PK_ID > last`, `q.orderBy=PK_ID`), the cheapest page a server can serve at any depth
(a page number deep in a table costs an OFFSET scan: ~3x the server time at 1M rows), with the
last key read by a byte search from the end of the page; the page count comes from the row
count the scenario already knows.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.parse
from collections.abc import Sequence

from .common import ContenderArgs, emit, parse_args, token_form

MAX_THROTTLE_WAITS = 600  # bounded: a throttled page is retried at most this often


def _connect(base_url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=120)
    return http.client.HTTPConnection(parts.netloc, timeout=120)


def _request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None = None,
) -> tuple[int, bytes, float | None]:
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    retry_after = response.getheader("Retry-After")
    return response.status, data, float(retry_after) if retry_after else None


def fetch_token(conn: http.client.HTTPConnection, args: ContenderArgs) -> str:
    body = urllib.parse.urlencode(token_form(args))
    status, data, _ = _request(
        conn,
        "POST",
        "/oauth/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        body,
    )
    if status != 200:
        raise RuntimeError(f"token call answered {status}: {data[:200]!r}")
    return str(json.loads(data)["access_token"])


def _last_pk(page: bytes, previous: int) -> int:
    """The last row's PK_ID, found from the end of the page without parsing it."""
    at = page.rfind(b'"PK_ID":')
    if at < 0:
        return previous
    digits = page[at + 8 : at + 40].lstrip()
    end = 0
    while end < len(digits) and digits[end : end + 1].isdigit():
        end += 1
    return int(digits[:end]) if end else previous


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, __doc__ or "")
    if args.rows is None:
        raise SystemExit("download_floor needs --rows: it never parses a page to find the end")
    started = time.perf_counter()
    conn = _connect(args.base_url)
    headers = {"Authorization": f"Bearer {fetch_token(conn, args)}", "Accept": "application/json"}
    root = urllib.parse.urlsplit(args.v3_url).path
    pages = math.ceil(args.rows / args.page_size)
    rows = 0
    total_bytes = 0
    throttled = 0
    for table in args.tables:
        last = 0
        for page in range(1, pages + 1):
            query = urllib.parse.urlencode(
                {"q.pageSize": args.page_size, "q.where": f"PK_ID > {last}", "q.orderBy": "PK_ID"}
            )
            path = f"{root}/tables/{urllib.parse.quote(table)}/records?{query}"
            for _ in range(MAX_THROTTLE_WAITS):
                status, data, retry_after = _request(conn, "GET", path, headers)
                if status != 429:
                    break
                throttled += 1
                time.sleep(retry_after if retry_after is not None else 1.0)
            if status != 200:
                raise RuntimeError(f"{table} page {page} answered {status}: {data[:200]!r}")
            rows += data.count(b'"PK_ID"')
            last = _last_pk(data, last)
            total_bytes += len(data)
    conn.close()
    emit(
        "download_floor",
        rows,
        started,
        bytes=total_bytes,
        pages=pages * len(args.tables),
        throttled=throttled,
    )


if __name__ == "__main__":
    main()
