"""Fixtures shared by host and end-to-end tests."""

import pytest

from gbmeter import paths


@pytest.fixture(scope="session")
def shared():
    """../shared, or skip: reference data is never copied into the repo."""
    s = paths.shared()
    if s is None:
        pytest.skip("../shared is absent: RTDS reference data and ZAZ1 keys not available")
    return s
