"""Any OAuth2 HTTP client pages a table to the end: here plain `requests`, as in a notebook."""

from __future__ import annotations

import requests

from caspio_emulator import Emulator


def test_requests_notebook_style_paging(caspio_emulator: Emulator) -> None:
    base = caspio_emulator.base_url
    token = requests.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-id",
            "client_secret": "demo-secret",
        },
        timeout=10,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    rows: list[dict] = []
    page = 1
    while True:
        r = requests.get(
            f"{base}/integrations/rest/v3/tables/Order_Items/records",
            params={"q.pageNumber": str(page), "q.pageSize": "1000", "q.orderBy": "PK_ID"},
            headers=headers,
            timeout=10,
        )
        r.raise_for_status()
        batch = r.json()["Result"]
        rows += batch
        if len(batch) < 1000:
            break
        page += 1
    assert len(rows) == 3003 and len({r["PK_ID"] for r in rows}) == 3003
    assert caspio_emulator.calls == 1 + 4
