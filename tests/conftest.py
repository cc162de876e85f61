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


@pytest.fixture(scope="session")
def duis_dir():
    """../shared/duis (DUIS schemas, XML-signing keys, DCC Boxed samples), or skip."""
    s = paths.shared()
    if s is None or not (s / "duis" / "xsd").is_dir():
        pytest.skip("../shared/duis is absent: DUIS schemas, XML keys and samples not available")
    return s / "duis"


@pytest.fixture(autouse=True)
def gbmeter_home(tmp_path_factory, monkeypatch):
    """Default key and DCC folders go to a temporary home, never the checkout."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("GBMETER_HOME", str(home))
    monkeypatch.setenv("GBMETER_DCC_DIR", str(home / "dcc"))
    return home
