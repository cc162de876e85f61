"""The rails end to end: a virtual board started with `gbmeter sim`, pinged,
taken over by mpremote, restarted on the same folder, fuzzed, and killed."""

import json
import os
import pty
import random
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

from gbmeter.board.link import T_DIAG, T_DIAG_REPLY, T_GBCS, Link, LinkError, encode
from gbmeter.paths import micropython, tool

from simboards import GBMETER, VARIANTS, wait_until

pytestmark = pytest.mark.e2e


def gbmeter(*args, **kw):
    return subprocess.run([GBMETER, *args], capture_output=True, text=True, timeout=60, **kw)


def test_ping_cli_both_devices(start_board, variant):
    for device in ("gsme", "esme"):
        b = start_board(device)
        r = gbmeter("ping", "--port", b.port, "--json")
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["device"] == device
        assert info["board"] == "unix"
        assert info["fw"]
        assert info["heap_free"] > 0
        if variant == "smallheap":
            assert info["heap_free"] < 128 * 1024
        text = gbmeter("ping", "--port", b.port)
        assert device.upper() in text.stdout


def test_mpy_variant_deploys_compiled_modules(board, variant):
    names = {p.name for p in board.dir.iterdir()}
    assert "main.py" in names and "board.json" in names
    if "--mpy" in VARIANTS[variant]:
        assert "link.mpy" in names and "link.py" not in names
    else:
        assert "link.py" in names and "link.mpy" not in names


def test_mpremote_takes_over_and_firmware_restarts(board):
    r = subprocess.run([tool("mpremote"), "connect", board.port, "resume", "exec",
                        "import sys; print(sys.platform)"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "linux"
    # the firmware no longer answers frames...
    with pytest.raises(LinkError):
        with Link(board.port, timeout=1.0) as link:
            link.ping()
    # ...until it is started again, the way the sim starts it
    r = subprocess.run([tool("mpremote"), "connect", board.port, "resume", "exec",
                        "--no-follow", "exec(open('main.py').read())"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    with Link(board.port, timeout=5.0) as link:
        assert link.ping()["device"] == "gsme"


def test_release_frame_hands_back_to_repl(board):
    with Link(board.port, timeout=5.0) as link:
        link.release()
    r = subprocess.run([tool("mpremote"), "connect", board.port, "resume", "exec", "print(6*7)"],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "42"


def test_board_folder_survives_restart(start_board, tmp_path):
    d = tmp_path / "flash"
    b = start_board("esme", dir=d)
    (d / "note.txt").write_text("kept")  # stands for anything the meter wrote to flash
    assert b.stop() == 0
    assert wait_until(lambda: not b.unix_port_alive())
    b2 = start_board(None, dir=d)  # a reused folder runs the meter it holds
    assert b2.device == "esme"
    assert (d / "note.txt").read_text() == "kept"


def test_sim_stops_unix_port_cleanly(board):
    assert board.unix_port_alive()
    assert board.stop() == 0
    assert wait_until(lambda: not board.unix_port_alive())


def test_unknown_frame_type_and_bad_diag_answered(board):
    with Link(board.port, timeout=5.0) as link:
        with pytest.raises(LinkError, match="unknown frame type"):
            link.request(0x77, b"")
        frames = link.request(T_DIAG, b"not json")
        assert json.loads(frames[-1].payload)["ok"] is False
        assert link.ping()["device"] == "gsme"


def test_partial_frame_is_abandoned_with_nak(board):
    with Link(board.port, timeout=5.0) as link:
        f = encode(T_GBCS, 200, b"x" * 50)
        link.write(f[:20])
        t0 = time.monotonic()
        with pytest.raises(LinkError, match="not completed in time"):
            link.seq = 199  # the host's next seq is the one the partial frame carried
            while True:
                fr = link.read_frame(3.0)
                if fr.seq == 200:
                    raise LinkError(fr.payload[1:].decode())
        assert time.monotonic() - t0 < 3.0
        assert link.ping()["device"] == "gsme"


def _mutations(rng, good):
    f = bytearray(rng.choice(good))
    kind = rng.randrange(6)
    if kind == 0:  # pure noise
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 80)))
    if kind == 1:  # flipped bits anywhere
        for _ in range(rng.randrange(1, 4)):
            f[rng.randrange(len(f))] ^= 1 << rng.randrange(8)
    elif kind == 2:  # truncated
        f = f[:rng.randrange(1, len(f))]
    elif kind == 3:  # lying length with a header check that agrees
        n = rng.choice([0, 1, len(f), 4096, 4097, 65535])
        f[5], f[6] = n >> 8, n & 0xFF
        from gbmeter.board.link import crc8
        f[7] = crc8(f[:7])
    elif kind == 4:  # wrong CRC
        f[-1] ^= 0xFF
    else:  # noise glued to a good frame
        f = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 20))) + f
    return bytes(f)


def _ping_through_naks(link, seq=0xEE):
    """Ping with a raw frame and wait for its reply, skipping the NAKs the fuzz earned
    (a NAK for a corrupt header carries whatever seq byte the noise had)."""
    link.write(encode(T_DIAG, seq, b'{"op":"ping"}'))
    while True:
        f = link.read_frame(10.0)
        if f.type == T_DIAG_REPLY and f.seq == seq:
            assert json.loads(f.payload)["ok"]
            return


def test_link_fuzz_board_still_answers(board, variant):
    """At least 10,000 random and mutated frames (fewer in the slower variants: set
    GBMETER_FUZZ_FRAMES to scale), then the board must still answer ping."""
    total = int(os.environ.get("GBMETER_FUZZ_FRAMES", "10000"))
    if variant != "py":
        total = min(total, 2000)
    rng = random.Random(int(os.environ.get("GBMETER_FUZZ_SEED", "20261121")))
    good = [encode(T_DIAG, 1, b'{"op":"ping"}'), encode(T_GBCS, 2, bytes(range(40))),
            encode(0x42, 3, b"zz"), encode(T_DIAG, 4, b'{"op":"nope"}')]
    sent = 0
    with Link(board.port, timeout=5.0) as link:
        while sent < total:
            batch = b"".join(_mutations(rng, good) for _ in range(50))
            sent += 50
            # Zeros end any frame left open by a lying length (its CRC then fails)
            # and are noise otherwise; then the board must answer at once.
            link.write(batch + bytes(4096 + 12))
            _ping_through_naks(link)
        info = link.ping()
    print(f"fuzz: {sent} frames sent, board answered ping after every 50")
    assert info["device"] == "gsme"


def test_board_vanishing_mid_reply_names_port(board):
    with Link(board.port, timeout=3.0) as link:
        link.ping()
        os.kill(board.pid, 9)  # the unix port dies: the bridge stops, the sim exits
        t0 = time.monotonic()
        with pytest.raises(LinkError) as e:
            link.ping()
        assert board.port in str(e.value)
        assert time.monotonic() - t0 < 10


def test_port_that_is_not_a_board():
    m, s = pty.openpty()
    tty.setraw(s)
    try:
        name = os.ttyname(s)
        os.write(m, b">>> ")  # a REPL prompt, no frames
        r = gbmeter("ping", "--port", name, "--timeout", "1")
        assert r.returncode == 1
        assert "no answer from " + name in r.stderr
        assert "gbmeter board" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        os.close(m)
        os.close(s)


def test_port_that_does_not_exist():
    r = gbmeter("ping", "--port", "/dev/gbmeter-no-such-port")
    assert r.returncode == 1 and "cannot open /dev/gbmeter-no-such-port" in r.stderr


def test_missing_unix_port_binary_says_how_to_install(tmp_path):
    env = dict(os.environ, MICROPYTHON=str(tmp_path / "no-micropython"))
    r = gbmeter("sim", "--json", "--dir", str(tmp_path / "b"), env=env)
    assert r.returncode == 1
    assert "make setup" in r.stderr and "MICROPYTHON" in r.stderr
    assert "Traceback" not in r.stderr
