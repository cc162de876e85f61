"""The firmware on a bare-metal board: MicroPython's qemu port for the MPS2-AN385
(Cortex-M3, 32-bit, no os.urandom, no cryptolib) built with boards/qemu_mps2 and run
by `gbmeter sim --board qemu_mps2` exactly as a user starts it: the image built (or
taken from the cache), qemu on a pty, the firmware deployed with mpremote over the
emulated UART as `make deploy` does, the board reset, its meter state on littlefs in
a flash file that outlives qemu. Both fuels: provisioned (a seed from the host, as
the board has no entropy source), debt loaded and each register reset with signed
Commands, a replayed Command refused with nothing changed, and all of it still there
after a restart and after power cuts mid-Command. Skips, saying why, when the
toolchain or the MicroPython source is absent."""

import json
import os
import random
import signal
import subprocess
import time

import pytest

from gbmeter.board import qemu
from gbmeter.board.link import Link, LinkError, MeterError, T_GBCS, encode
from gbmeter.gbcs import codec
from gbmeter.paths import tool
from gbmeter.supplier.provision import provision
from gbmeter.dcc import duis, srxml
from gbmeter.dcc.precommand import transform
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import meter_floor

from simboards import GBMETER, SimBoard, wait_until

WHY = qemu.missing()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(WHY is not None, reason=f"qemu board: {WHY}")]

IDS = {"gsme": "00DB1234567890A1", "esme": "00DB1234567890A0"}
REGISTERS = ("time1", "time2", "payment")


@pytest.fixture(scope="module")
def image():
    """The firmware image, built once for the module (cached under build/)."""
    return qemu.firmware()


@pytest.fixture(scope="module")
def keyfolder(tmp_path_factory):
    k = tmp_path_factory.mktemp("qemu-keys")
    assert gb("keys", "init", k).returncode == 0
    return k


@pytest.fixture
def boards(image):
    started = []

    def start(dir, device="gsme"):
        b = SimBoard(dir, device, ["--board", qemu.BOARD], timeout=180)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


def gb(*args):
    return subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def gbjson(*args):
    r = gb(*args, "--json")
    assert r.returncode in (0, 2), r.stdout + r.stderr
    return r.returncode, json.loads(r.stdout)


def registers(port):
    regs = gbjson("registers", "--port", port)[1]
    regs.pop("alerts", None)
    return regs


def _reset_command(keyfolder, port, meter_id, device, register):
    """The COMMAND the DCC chain makes for a Reset Debt Register request (Supplier
    signed, ACB MAC'd), on the Supplier's next counter, not sent."""
    s = Session(keyfolder)
    with Link(port) as link:
        counter = s.next_counter(meter_id, meter_floor(link, s.supplier.eui))
    xml = srxml.reset_debt_xml(s.supplier.title, bytes.fromhex(meter_id), counter, register)
    command, _ = s.command(transform(duis.parse_request(xml, device=device)))
    s.used_counter(meter_id, counter)
    return command


@pytest.mark.parametrize("device", ["gsme", "esme"])
def test_meter_on_cortex_m3(boards, keyfolder, tmp_path, device):
    d = tmp_path / "board"
    b = boards(d, device)
    hello = gbjson("ping", "--port", b.port)[1]
    assert (hello["board"], hello["platform"], hello["device"]) == (qemu.BOARD, "qemu", device)
    assert hello["entropy"] is False and hello["test_board"] is True
    assert 0 < hello["heap_free"] < 64 * 1024  # the board's own 64K heap, 32-bit
    assert (d / qemu.FLASH).stat().st_size >= 64 * 1024  # the flash is the host file

    # No entropy source: asked to make its keys without a seed, the meter refuses
    # plainly and nothing changes.
    before = registers(b.port)
    with Link(b.port) as link:
        with pytest.raises(MeterError, match="no entropy source"):
            link.diag("provision", timeout=60, anchors={})
    assert registers(b.port) == before

    mid = IDS[device]
    _, out = gbjson("provision", "--port", b.port, "--device", device, "--id", mid,
                    "--keys", keyfolder)
    assert "seed from the host" in out["key_pairs_from"] and len(out["ds_public_key"]) == 128

    dcc = ["--keys", keyfolder, "--dcc-dir", tmp_path / "dcc"]
    code, out = gbjson("manage-debt", "--port", b.port, "--time1", 1000, "--time2", 2000,
                       "--payment", 3000, *dcc)
    assert code == 0 and out["ok"] and out["signature_valid"] is True, out
    regs = registers(b.port)
    assert [regs[r] for r in REGISTERS] == [1000, 2000, 3000]
    for reg in REGISTERS[:2]:
        code, out = gbjson("reset-debt", "--port", b.port, "--register", reg, *dcc)
        assert code == 0 and out["ok"] and out["signature_valid"] is True, out
    # the payment register: a Command the DCC chain would build, sent as raw bytes
    cmd = _reset_command(keyfolder, b.port, mid, device, "payment").hex()
    code, out = gbjson("send", "--port", b.port, "--keys", keyfolder, cmd)
    assert code == 0 and out["ok"] and out["signature_valid"] is True, out
    done = registers(b.port)
    assert [done[r] for r in REGISTERS] == [0, 0, 0]

    # An attack: that Command replayed. Refused (8F53), nothing changed but the
    # meter's alert counter.
    code, out = gbjson("send", "--port", b.port, "--keys", keyfolder, cmd)
    assert code == 2 and out["alert"] == "8F53", out
    after = registers(b.port)
    after.pop("alert_ctr"), done.pop("alert_ctr")
    assert after == done

    # Restart (qemu stopped and started on the same flash file): the state is there,
    # and the replay is still refused.
    assert b.stop() == 0
    assert wait_until(lambda: not b.unix_port_alive(), 10)
    b2 = boards(d, device)
    again = registers(b2.port)
    again.pop("alert_ctr")
    assert again == after and again["device"] == device
    code, out = gbjson("send", "--port", b2.port, "--keys", keyfolder, cmd)
    assert code == 2 and out["alert"] == "8F53", out


def _mpremote(port, *args):
    r = subprocess.run([tool("mpremote"), "connect", port, *args], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _answers(port):
    try:
        with Link(port, timeout=2.0) as link:
            return link.ping()["board"] == qemu.BOARD
    except LinkError:
        return False


def _gsme_reset(s, counter, register):
    # GCS04a for the GSME: one Change Debt component setting `register` to zero
    payload = codec.change_debt(1, 0, 1 if register == 2 else 0, register * 2)
    content = codec.build_gbz([(0x0705, 0x02, payload)])
    pre = codec.build_apdu(1, counter, s.supplier.title, bytes.fromhex(IDS["gsme"]),
                           0x0F01, content)
    return s.command(pre)[0]


def test_power_cuts_mid_command_littlefs_and_reset(boards, keyfolder, tmp_path):
    """qemu killed at random instants after a reset Command was sent: after each cut
    the board starts again on its flash file with exactly the old or the new state
    (littlefs and the two-slot store on the semihosted flash). Then the board's
    filesystem as mpremote sees it, and `mpremote reset`."""
    d = tmp_path / "board"
    b = boards(d)
    s = Session(keyfolder)
    with Link(b.port) as link:
        provision(s, link, "gsme", IDS["gsme"])
    rng = random.Random(int(os.environ.get("GBMETER_CUT_SEED", "7")))
    outcomes = {"old": 0, "new": 0}
    for i in range(int(os.environ.get("GBMETER_QEMU_CUTS", "3"))):
        register = i % 3
        with Link(b.port) as link:
            link.diag("set", fields={REGISTERS[register]: 5000 + i})
            old = link.diag("registers")
            link.write(encode(T_GBCS, 1, _gsme_reset(s, 100 + i, register)))
            time.sleep(rng.uniform(0, 0.4))
            os.killpg(b.pid, signal.SIGKILL)  # the power cut
        b.stop()
        b = boards(d)
        with Link(b.port) as link:
            now = link.diag("registers")
        new = dict(old, **{REGISTERS[register]: 0})
        new["counters"] = dict(old["counters"], **{s.supplier.eui: 100 + i})
        for st in (old, new, now):
            st.pop("alerts", None), st.pop("alert_ctr", None)
        assert now in (old, new), f"torn state after cut {i}"
        outcomes["new" if now == new else "old"] += 1
    print(f"qemu power cuts mid-Command: state old {outcomes['old']}, new {outcomes['new']}")

    # What mpremote finds on the board: the compiled firmware and the meter's store
    # on littlefs, and no os.urandom.
    out = _mpremote(b.port, "exec", "import os, vfs; print(sorted(os.listdir('/'))); "
                    "print(type(vfs.mount()[0][0]).__name__); print(hasattr(os, 'urandom'))")
    files, fs, urandom = out.strip().splitlines()
    files = files.strip("[]").replace("'", "").split(", ")
    assert "main.py" in files and "link.mpy" in files and "link.py" not in files
    assert "board.json" in files and any(f.startswith("state.") for f in files)
    assert fs == "VfsLfs2" and urandom == "False"
    # `mpremote reset` resets the board (qemu exits); the sim powers it on again.
    # Frames sent while it is down are lost, as on a board: ask until it answers.
    _mpremote(b.port, "reset")
    assert wait_until(lambda: _answers(b.port), 60, 0.5)
