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


@pytest.fixture(autouse=True)
def gbmeter_home(tmp_path_factory, monkeypatch):
    """Default key and DCC folders go to a temporary home, never the checkout."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("GBMETER_HOME", str(home))
    monkeypatch.setenv("GBMETER_DCC_DIR", str(home / "dcc"))
    return home
