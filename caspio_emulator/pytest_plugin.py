"""pytest fixtures for the emulator (registered through the ``pytest11`` entry point).

``caspio_emulator``: a fresh demo account per test, already serving.
``caspio_emulator_factory``: call it with ``Emulator`` keyword arguments; every emulator it
made is stopped at teardown.

Imports are lazy so that merely having the plugin installed costs a pytest run nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from caspio_emulator import Emulator


@pytest.fixture
def caspio_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    from caspio_emulator import Emulator

    made: list[Emulator] = []

    def factory(**kwargs: Any) -> Emulator:
        emu = Emulator(**kwargs).start()
        made.append(emu)
        return emu

    yield factory
    for emu in made:
        emu.stop()


@pytest.fixture
def caspio_emulator(caspio_emulator_factory: Callable[..., Emulator]) -> Emulator:
    from caspio_emulator import DEMO_DATASET

    return caspio_emulator_factory(dataset=DEMO_DATASET)
