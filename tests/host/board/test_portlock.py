"""One process at a time on a board's port (gbmeter.board.portlock, used by Link)."""

import os
import subprocess
import sys
import time

import pytest

from gbmeter.board import portlock
from gbmeter.board.link import Link, LinkError


@pytest.fixture(autouse=True)
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GBMETER_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


HOLD = """
import sys, time
from gbmeter.board import portlock
portlock.acquire(sys.argv[1], wait=5)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def holder(port, seconds):
    p = subprocess.Popen([sys.executable, "-c", HOLD, port, str(seconds)],
                         stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert p.stdout.readline().strip() == "held"
    return p


def test_busy_port_names_its_holder_after_the_timeout(tmp_path):
    dev = tmp_path / "ttyFAKE"
    dev.write_text("")
    p = holder(str(dev), 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(portlock.PortBusy) as e:
            portlock.acquire(str(dev), wait=0.6, notify=lambda text: None)
        assert time.monotonic() - t0 >= 0.6
        msg = str(e.value)
        assert f"pid {p.pid}" in msg and "gave up after" in msg and "GBMETER_PORT_WAIT" in msg
        assert "-c" in msg   # the holder's command line
    finally:
        p.kill()
        p.wait()
    # the kernel dropped the killed holder's lock: no stale lock blocks anyone
    k = portlock.acquire(str(dev), wait=1)
    portlock.release(k)


def test_waiter_is_told_and_gets_the_port_when_freed(tmp_path):
    dev = tmp_path / "ttyFAKE"
    dev.write_text("")
    p = holder(str(dev), 1.0)
    told = []
    try:
        k = portlock.acquire(str(dev), wait=20, notify=told.append)
        portlock.release(k)
    finally:
        p.wait()
    assert len(told) == 1 and f"pid {p.pid}" in told[0] and "waiting for" in told[0]


def test_a_symlink_and_its_device_are_one_port(tmp_path):
    dev = tmp_path / "ttyACM9"
    dev.write_text("")
    link = tmp_path / "by-id"
    link.symlink_to(dev)
    assert portlock.lock_path(str(link)) == portlock.lock_path(str(dev))
    p = holder(str(link), 30)
    try:
        with pytest.raises(portlock.PortBusy):
            portlock.acquire(str(dev), wait=0.2, notify=lambda text: None)
    finally:
        p.kill()
        p.wait()


def test_same_process_does_not_wait_for_itself(tmp_path):
    dev = tmp_path / "ttyFAKE"
    dev.write_text("")
    a = portlock.acquire(str(dev), wait=0)
    b = portlock.acquire(str(dev), wait=0)
    portlock.release(b)
    portlock.release(a)
    assert not portlock._held


def test_link_takes_the_lock_and_gives_it_back(tmp_path):
    p = holder("loop://", 30)
    try:
        with pytest.raises(portlock.PortBusy, match=f"in use by pid {p.pid}"):
            Link("loop://", wait=0.2)
    finally:
        p.kill()
        p.wait()
    with Link("loop://", wait=1):
        assert portlock._held
    assert not portlock._held
    # a port that cannot be opened leaves no lock behind
    with pytest.raises(LinkError, match="no such port"):
        Link(str(tmp_path / "nothing-here"), wait=1)
    assert not portlock._held


def test_bad_wait_setting_is_named(monkeypatch):
    monkeypatch.setenv("GBMETER_PORT_WAIT", "soon")
    with pytest.raises(portlock.UserError, match="GBMETER_PORT_WAIT"):
        portlock.acquire("loop://")
