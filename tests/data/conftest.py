"""Every data test starts with an empty dataset cache."""

from __future__ import annotations

import pytest

from nlx.data.cache import clear_cache


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()
