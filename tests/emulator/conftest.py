"""Shared helpers for the emulator tests: an authenticated requests session per emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from caspio_emulator import DEMO_DATASET, Emulator


class Api:
    """A tiny Caspio client for tests: one session, a token, v3 paths."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.s = requests.Session()
        r = self.s.post(
            emu.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
            },
            timeout=10,
        )
        r.raise_for_status()
        self.token = r.json()["access_token"]
        self.s.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str, root: Any = None, **params: Any) -> requests.Response:
        return self.s.get((root or self.emu.v3_url) + path, params=params or None, timeout=10)

    def write(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.s.request(
            method,
            self.emu.v3_url + path,
            params=params or None,
            json=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )


@pytest.fixture(scope="module")
def shared_emu() -> Iterator[Emulator]:
    """A read-only demo account shared by a module (tests that write use their own)."""
    with Emulator(dataset=DEMO_DATASET, generate={"Big": 2500}) as emu:
        yield emu


@pytest.fixture(scope="module")
def api(shared_emu: Emulator) -> Api:
    return Api(shared_emu)


@pytest.fixture
def fresh_api(caspio_emulator: Emulator) -> Api:
    return Api(caspio_emulator)
