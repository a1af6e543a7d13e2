"""The few plain REST calls the harness itself makes: fields, and S4's updates through the API.

The harness changes rows the way a Caspio user's app would (PUT with a `q.where`), never by
reaching into the emulator's database, so the emulator stamps `OnUpdate` timestamps itself.
Its calls are made before a contender's log window opens, so no contender is charged for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class CaspioApi:
    base_url: str
    client_id: str
    client_secret: str

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self._token: str | None = None

    @property
    def v3(self) -> str:
        return self.base_url.rstrip("/") + "/integrations/rest/v3"

    def auth_headers(self) -> dict[str, str]:
        """The bearer header (one token call per instance, on first use)."""
        if self._token is None:
            response = self.session.post(
                self.base_url.rstrip("/") + "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
                timeout=60,
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    def fields(self, table: str) -> list[dict[str, Any]]:
        response = self.session.get(
            f"{self.v3}/tables/{table}/fields", headers=self.auth_headers(), timeout=60
        )
        response.raise_for_status()
        return list(response.json()["Result"])

    def cursor_field(self, table: str) -> str | None:
        """The TIMESTAMP field stamped on update: what an incremental cursor must use."""
        stamps = [f for f in self.fields(table) if str(f.get("Type", "")).upper() == "TIMESTAMP"]
        on_update = [f for f in stamps if f.get("OnUpdate")]
        chosen = on_update or stamps
        return str(chosen[0]["Name"]) if chosen else None

    def editable_text_field(self, table: str) -> str:
        for field in self.fields(table):
            if str(field.get("Type", "")).upper() == "STRING" and field.get("Editable", True):
                return str(field["Name"])
        raise RuntimeError(f"{table} has no editable STRING field to update")

    def update_where(self, table: str, where: str, values: dict[str, Any]) -> int:
        """PUT values into every row matching `where`; the rows affected, as Caspio counts."""
        response = self.session.put(
            f"{self.v3}/tables/{table}/records",
            params={"q.where": where},
            json=values,
            headers=self.auth_headers(),
            timeout=600,
        )
        response.raise_for_status()
        return int(response.json().get("RecordsAffected", 0))

    def update_share(self, table: str, rows: int, changed: int, round_no: int) -> int:
        """Update `changed` of `rows` rows, spread over the table (`PK_ID % m = r`).

        Falls back to one contiguous PK_ID range when the where-clause dialect refuses `%`.
        """
        field = self.editable_text_field(table)
        values = {field: f"bench-update-{round_no}"}
        modulus = max(1, rows // max(1, changed))
        try:
            return self.update_where(table, f"PK_ID % {modulus} = {round_no % modulus}", values)
        except requests.HTTPError:
            low = (round_no * changed) % max(1, rows - changed)
            return self.update_where(table, f"PK_ID > {low} AND PK_ID <= {low + changed}", values)
