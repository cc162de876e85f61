"""Deployment with mpremote: the command lines for real and virtual boards, the stale
module clean-up, and `gbmeter deploy`'s plain errors. (No physical board is attached
here, so a real deploy is exercised only up to mpremote failing on a missing port;
the same mpremote path deploys every virtual board in tests/e2e.)"""

import subprocess
import sys
from pathlib import Path

from gbmeter.board import deploy

GBMETER = str(Path(sys.executable).parent / "gbmeter")


def test_argv_for_a_real_and_a_virtual_board():
    files = [Path("/s/link.mpy"), Path("/s/board.json")]
    real = deploy.mpremote_argv("/dev/ttyACM0", files, True, resume=False, then=["reset"])
    assert real[1:4] == ["connect", "/dev/ttyACM0", "exec"]
    assert real[-6:] == ["cp", "/s/link.mpy", "/s/board.json", ":./", "+", "reset"]
    virtual = deploy.mpremote_argv("/dev/pts/9", files, True, resume=True)
    assert virtual[1:5] == ["connect", "/dev/pts/9", "resume", "exec"]
    assert virtual[-1] == ":./" and "reset" not in virtual   # the sim resets it itself


def test_cleanup_removes_only_the_other_format():
    class FakeOs:
        removed = []

        def remove(self, name):
            if name.startswith("link."):
                raise OSError(2)      # not on the board: fine
            self.removed.append(name)

    stems = {p.stem for p in deploy.firmware_files() if p.name != deploy.BOOT}
    for mpy, stale in ((True, ".py"), (False, ".mpy")):
        fake = FakeOs()
        fake.removed = []
        code = deploy._cleanup_code(mpy)
        exec(code.replace("import os\n", ""), {"os": fake})
        assert set(fake.removed) == {s + stale for s in stems if s != "link"}
        assert "main" + stale not in fake.removed     # main.py always stays source


def gb(*args):
    return subprocess.run([GBMETER, *args], capture_output=True, text=True, timeout=120)


def test_deploy_errors_in_plain_words():
    r = gb("deploy", "--board", "no_such_board", "--port", "/dev/null")
    assert r.returncode == 1 and "no board called 'no_such_board'" in r.stderr
    assert "rpi_pico" in r.stderr and "Traceback" not in r.stderr
    r = gb("deploy", "--board", "rpi_pico", "--port", "/dev/gbmeter-no-such-port")
    assert r.returncode == 1 and "/dev/gbmeter-no-such-port" in r.stderr
    assert "Traceback" not in r.stderr
