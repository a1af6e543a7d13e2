"""Fixtures of the source's tests: a client bound to an emulator, a private token cache, and a
fresh in-process token registry per test (a port reused by a new emulator must not see the old
emulator's token)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sources.caspio import CaspioClient, CaspioCredentials, reset_token_providers


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    reset_token_providers()
    yield
    reset_token_providers()


@pytest.fixture
def token_dir(tmp_path: Path) -> Path:
    return tmp_path / "tokens"


def credentials_for(emu: Any) -> CaspioCredentials:
    return CaspioCredentials(
        client_id=emu.client_id, client_secret=emu.client_secret, integration_url=emu.base_url
    )


@pytest.fixture
def make_client(token_dir: Path) -> Iterator[Callable[..., CaspioClient]]:
    made: list[CaspioClient] = []

    def make(emu: Any, **kwargs: Any) -> CaspioClient:
        kwargs.setdefault("token_cache_dir", str(token_dir))
        kwargs.setdefault("backoff_base", 0.01)
        kwargs.setdefault("backoff_max", 0.05)
        client = CaspioClient(credentials_for(emu), **kwargs)
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


def settled_log(emu: Any) -> list[Any]:
    """``emu.log`` once it has caught up with ``emu.calls``.

    Works around an emulator race: ``calls`` is counted when a request is admitted but the log
    entry is appended only after the answer was written, so a client can return before its
    last call shows in the log.
    """
    deadline = time.monotonic() + 5
    log = emu.log
    while len(log) < emu.calls and time.monotonic() < deadline:
        time.sleep(0.01)
        log = emu.log
    return log


def reset_log(emu: Any) -> None:
    """``emu.reset_log()`` after in-flight log entries landed (see ``settled_log``)."""
    settled_log(emu)
    emu.reset_log()


def record_calls(emu: Any, name: str | None = None) -> list[Any]:
    """The emulator's logged record calls (optionally of one object)."""
    return [
        e
        for e in settled_log(emu)
        if e.path.endswith("/records") and (name is None or f"/{name}/" in e.path)
    ]


def token_calls(emu: Any) -> int:
    return sum(1 for e in settled_log(emu) if e.is_token)
