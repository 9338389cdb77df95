"""End-to-end fixtures: an empty ledger behind the API once per store, and a
seeded scenario shared by a module (see api_helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import Api, FakeClock, open_api, seed


@pytest.fixture
def api(store_url: str, clock) -> Iterator[Api]:
    """An empty ledger behind the API, once per store (SQLite and PostgreSQL)."""
    yield from open_api(store_url, clock)


@pytest.fixture
def seeded(api: Api) -> Api:
    seed(api.ledger, api.clock)
    return api


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The seeded scenario, shared by a module's tests (SQLite)."""
    clock = FakeClock()
    url = f"sqlite:///{tmp_path_factory.mktemp('scenario')}/ledger.sqlite"
    for api in open_api(url, clock):
        seed(api.ledger, clock)
        yield api


